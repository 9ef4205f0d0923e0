"""Training with TensorFlow: the settings, the loop, what it writes and prints. Slow, so
marked; CI still runs them. The songs and settings here serve the other training tests too."""

import json

import numpy as np
import pytest

from synth.errors import SynthError
from synth.music.events import Event
from synth.learn.ppm import LongTerm
from synth.music.songs import Song, load_dataset

pytestmark = pytest.mark.slow


def ev(*pairs):
    return [Event(c, q) for c, q in pairs]


def small_songs(count=6):
    rng = np.random.default_rng(0)
    motifs = [ev((13, 2), (15, 2), (17, 4), (13, 8)), ev((17, 4), (18, 4), (20, 6), (0, 2)),
              ev((20, 1), (18, 1), (17, 2), (15, 12))]
    return [Song(events=[e for _ in range(6) for e in motifs[rng.integers(3)]], title=f"s{i}")
            for i in range(count)]


FAST = dict(epochs=2, units=32, chunk=16, batch_size=8)


def test_train_writes_a_model_that_composes(tmp_path):
    from synth.learn.generate import Sampling, compose
    from synth.learn.train import TrainSettings, train
    from synth.learn.model import load_model

    result = train(small_songs(10), tmp_path / "m", TrainSettings(**FAST))
    assert result.evaluated_on == "held-out songs" and len(result.held_out_songs) == 2
    model = load_model(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["training"]["data_digest"] and manifest["metrics"]["joint_bits"] > 0
    assert manifest["format_version"] == 2 and model.has_lengths
    assert manifest["architecture"]["lstm_units"] == 32
    # The memory: on when asked, its long-term tables fitted on the training songs only, and scored.
    assert manifest["memory"]["enabled"] and model.memory_tables is not None
    held = {s.title for s in small_songs(10)} - set(result.held_out_songs)
    fitted = LongTerm.fit([s.events for s in small_songs(10) if s.title in held],
                          *manifest["memory"]["long_orders"])
    assert np.array_equal(LongTerm.from_arrays(model.memory_tables).probs, fitted.probs)
    assert manifest["metrics"]["with_memory"]["joint_bits"] > 0
    # The gate, fitted on the held-out songs: an offset and a bias per model (LSTM, long-term,
    # short-term) for each head, and the memory scores no worse with it than IDyOM's weights.
    gates = manifest["memory"]["gates"]
    assert all(len(gates[h]["offsets"]) == len(gates[h]["biases"]) == 3 for h in gates)
    assert manifest["memory"]["link"]
    from synth.learn.evaluation import metrics_of
    from synth.learn.memory import Memory
    held_songs = [s.events for s in small_songs(10) if s.title in result.held_out_songs]
    idyom = dict(model.manifest, memory={**model.manifest["memory"], "gates": None})
    plain = metrics_of(type(model)(model.weights, idyom), held_songs,
                       Memory(LongTerm.from_arrays(model.memory_tables)))
    assert manifest["metrics"]["with_memory"]["joint_bits"] <= plain.joint_bits + 1e-9
    composed = compose(model, 20, sampling=Sampling(seed=0))
    assert len(composed) == 20 and all(isinstance(e, Event) for e in composed)


def test_the_learning_rate_halves_over_its_half_life():
    from synth.learn.train import TrainSettings, learning_rate

    assert learning_rate(TrainSettings(), 100) == TrainSettings().learning_rate
    schedule = learning_rate(TrainSettings(learning_rate=0.004, lr_half_life=2.0), 100)
    assert float(schedule(0)) == pytest.approx(0.004)
    assert float(schedule(200)) == pytest.approx(0.002)  # two epochs of 100 steps
    assert float(schedule(300)) == pytest.approx(0.004 * 0.5 ** 1.5)
    for bad in (0.0, -1.0, float("nan"), 1e9):
        with pytest.raises(SynthError, match="lr-half-life"):
            TrainSettings(lr_half_life=bad).check()


def test_same_seed_same_model(tmp_path):
    from synth.learn.train import TrainSettings, train
    from synth.learn.model import load_model

    for name in ("a", "b"):
        train(small_songs(), tmp_path / name, TrainSettings(**FAST, seed=3))
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)


def test_too_few_songs_trains_on_all_and_says_so(tmp_path):
    from synth.learn.train import TrainSettings, train

    result = train(small_songs(3), tmp_path / "m", TrainSettings(**FAST))
    assert result.evaluated_on == "training songs" and result.held_out_songs == []
    # The memory is on by default; with no held-out songs to fit a gate on (fitted on the
    # training songs it would trust the LSTM, surer of those than of new ones), IDyOM's
    # entropy weights mix it. --no-memory saves the tables but composes without them.
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["memory"]["enabled"] and manifest["memory"]["tables"]["file"]
    assert manifest["memory"]["gates"] == {"classes": None, "lengths": None}
    train(small_songs(3), tmp_path / "n", TrainSettings(**FAST, memory=False))
    manifest = json.loads((tmp_path / "n" / "manifest.json").read_text())
    assert not manifest["memory"]["enabled"] and manifest["memory"]["tables"]["file"]


def test_songs_too_short_are_an_error(tmp_path):
    from synth.learn.train import TrainSettings, train

    with pytest.raises(SynthError, match="nothing to learn"):
        train([Song(events=ev((5, 4)))], tmp_path / "m", TrainSettings(**FAST))


def test_an_interrupted_run_leaves_the_previous_model(tmp_path, tiny_model):
    from synth.learn.train import TrainSettings, train

    before = {p.name: p.read_bytes() for p in tiny_model.iterdir()}

    class Interrupt:
        def start(self, epochs, batches): pass
        def batch(self, epoch, batch, logs): raise KeyboardInterrupt
        def epoch(self, epoch, logs): pass

    with pytest.raises(KeyboardInterrupt):
        train(small_songs(), tiny_model, TrainSettings(**FAST), Interrupt())
    assert {p.name: p.read_bytes() for p in tiny_model.iterdir()} == before


def test_bad_settings_are_errors():
    from synth.learn.train import TrainSettings

    for bad in (dict(epochs=0), dict(learning_rate=-1), dict(val_fraction=1.0),
                dict(strategy="magic"), dict(batch_size=0)):
        with pytest.raises(SynthError, match="expected"):
            TrainSettings(**bad).check()


def test_cli_train_prints_the_table_beside_the_baseline(cli, tmp_path):
    from synth.music.songs import write_song

    for song in small_songs(6):
        write_song(tmp_path / "dataset" / f"{song.title}.txt", song)
    code, out, err = cli("train", "--epochs", "2", "--batch-size", "8")
    assert code == 0, err
    for heading in ("class bits", "length bits", "joint bits", "Kneser-Ney", "held-out songs",
                    "LSTM + memory", "LSTM alone"):
        assert heading in out
    assert (tmp_path / "model" / "manifest.json").is_file()
    code, out, err = cli("evaluate", "--compose", "3")
    assert code == 0, err
    assert "copying:" in out and "Kneser-Ney" in out


def test_empty_dataset_is_an_error_not_zero_metrics(cli, tmp_path):
    (tmp_path / "dataset").mkdir()
    code, out, err = cli("train")
    assert code == 2 and "no song files" in err


def test_the_shipped_model_predicts_lengths_and_beats_the_baselines():
    from pathlib import Path

    from synth.learn.model import load_model

    model = load_model(Path(__file__).parent.parent / "synth" / "assets" / "model")
    manifest = model.manifest
    assert model.has_lengths and manifest["format_version"] == 2
    metrics = manifest["metrics"]
    assert metrics["evaluated_on"] == "held-out songs"
    assert metrics["class_bits"] < metrics["baselines"]["class_bits"]
    assert metrics["length_bits"] < metrics["baselines"]["length_bits"]
    songs = load_dataset(Path(__file__).parent.parent / "dataset")
    from synth.learn.batches import data_digest

    assert manifest["training"]["data_digest"] == data_digest(songs)


def test_max_minutes_stops_at_the_best_epoch_so_far(tmp_path):
    from synth.learn.train import TrainSettings, train

    result = train(small_songs(10), tmp_path / "m",
                   TrainSettings(**{**FAST, "epochs": 50}, max_minutes=1e-4))
    assert result.stopped_by == "the time limit" and result.epochs_run == 1
    assert (tmp_path / "m" / "manifest.json").is_file()


@pytest.mark.parametrize("minutes", [0, -1, float("nan"), 1e9])
def test_max_minutes_out_of_range_is_an_error(minutes):
    from synth.learn.train import TrainSettings

    with pytest.raises(SynthError, match="--max-minutes"):
        TrainSettings(max_minutes=minutes).check()


def test_train_prints_one_line_per_epoch_when_not_on_a_terminal(cli, tmp_path):
    from synth.music.songs import write_song

    for song in small_songs(6):
        write_song(tmp_path / "dataset" / f"{song.title}.txt", song)
    code, out, err = cli("train", "--epochs", "3", "--batch-size", "8")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines][:1] == ["epoch 1/3"]
    assert 1 <= len(lines) <= 3 and "held-out loss" in lines[0]
    assert "stopped by" in " ".join(out.split())


def test_the_time_limit_counts_the_time_spent_before_a_resume():
    from synth.learn.train import _callbacks

    class Net:
        stop_training = False

    for spent, stops in ((0.0, False), (61.0, True)):
        progress, net = _callbacks(None, max_minutes=1, spent=spent)[0], Net()
        progress.set_model(net)
        progress.on_train_begin()
        progress.on_epoch_begin(0)
        progress.on_epoch_end(0)
        assert progress.timed_out is stops and net.stop_training is stops
