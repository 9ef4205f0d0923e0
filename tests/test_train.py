"""Training with TensorFlow: slow, so marked; CI still runs them."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import random_weights
from synth.errors import SynthError
from synth.music.events import Event
from synth.learn.ppm import LongTerm
from synth.music.songs import Song, load_dataset, transpositions

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


@pytest.mark.parametrize("length", [2, 7, 64])
def test_keras_and_numpy_agree_to_1e_5_on_both_outputs(length):
    from synth.learn.scores import next_event_probs
    from synth.learn.train import build_keras_model, set_keras_weights
    from synth.learn.model import Model

    weights = random_weights(units=256, seed=2, scale=0.1)
    net = build_keras_model(units=256)
    set_keras_weights(net, weights)
    rng = np.random.default_rng(length)
    classes, lengths = rng.integers(0, 25, length), rng.integers(0, 32, length)
    events = [Event(int(c), int(q) + 1) for c, q in zip(classes, lengths)]
    steps = np.stack([classes, lengths, np.append(classes[1:], 0)], axis=-1)[None]
    out = net.predict(steps, verbose=0)[0]
    class_probs, length_probs = next_event_probs(Model(weights), events)
    assert np.abs(out[:, :25] - class_probs).max() < 1e-5
    assert np.abs(out[:-1, 25:] - length_probs).max() < 1e-5


def test_transpositions_cover_every_shift_in_range_and_keep_lengths():
    shifted = transpositions(ev((1, 2), (0, 8), (13, 1)))  # spans C3..C4: 12 more semitones
    assert len(shifted) == 12 and shifted[0] == ev((1, 2), (0, 8), (13, 1))
    assert shifted[-1] == ev((12, 2), (0, 8), (24, 1))
    assert transpositions(ev((0, 4), (0, 2))) == [ev((0, 4), (0, 2))]


def batches_of(dataset):
    return [np.concatenate(part) for part in zip(*[[t.numpy() for t in b] for b in dataset])]


def test_the_pipeline_reads_each_event_once_in_whole_batches():
    from synth.learn.train import corpus, pipeline

    song = [Event(c, c) for c in range(1, 11)]
    steps, targets, w = batches_of(pipeline(corpus([song], augment=False), 4, batch_size=2))
    assert steps.shape == (4, 4, 3) and w.sum() == 9  # 3 chunks and 1 of padding: 2 batches
    real = w > 0
    assert targets[..., 0][real].tolist() == list(range(2, 11))
    assert targets[..., 1][real].tolist() == list(range(1, 10))  # length class = quarters - 1
    assert steps[..., 1][real].tolist() == list(range(0, 9))
    assert (steps[..., 2] == targets[..., 0]).all()  # the length head reads the next class


def test_the_pipeline_transposes_as_it_goes_and_weights_each_song_as_its_events():
    from synth.learn.train import corpus, pipeline

    narrow, wide = ev((13, 4), (14, 4), (0, 2), (13, 4)), ev((1, 1), (24, 1), (12, 2))
    data = corpus([Song(events=narrow), Song(events=wide)], augment=True)
    steps, targets, w = batches_of(pipeline(data, 64, 4, epochs=range(1), seed=1))
    copies = {tuple(row[weights > 0]) for row, weights in zip(steps[..., 0], w)}
    assert copies == {tuple(e.cls for e in c[:-1]) for c in transpositions(narrow)} | \
        {tuple(e.cls for e in wide[:-1])}
    assert len(copies) == 23 + 1
    # each song weighs as much as its own events (3 and 2 targets), however many copies
    is_wide = ((steps[..., 0] == 24).any(axis=1) & (steps[..., 0] == 1).any(axis=1))
    assert w[~is_wide].sum() / 3 == pytest.approx(w[is_wide].sum() / 2, rel=1e-5)
    # and the weights average 1 over the copies' events
    sizes = np.array([4, 3])[data.song]
    assert (sizes * data.weight).sum() == pytest.approx(sizes.sum(), rel=1e-5)


def test_the_pipeline_shuffles_by_epoch_the_same_way_each_time():
    from synth.learn.train import corpus, pipeline

    data = corpus(small_songs(4), augment=True)
    first = batches_of(pipeline(data, 16, 8, epochs=range(0, 3), seed=5))[0]
    resumed = batches_of(pipeline(data, 16, 8, epochs=range(2, 3), seed=5))[0]
    per_epoch = len(first) // 3
    assert np.array_equal(first[2 * per_epoch:], resumed)
    assert not np.array_equal(first[:per_epoch], first[per_epoch:2 * per_epoch])


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


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = textwrap.dedent(f"""
        from pathlib import Path
        import tensorflow as tf
        from synth.learn.train import TrainSettings, train
        from synth.music.events import events_of
        from synth.music.songs import Song
        songs = [Song(events=events_of([13, 15, 17, 18, 20, 0] * 8), title=str(i))
                 for i in range(6)]
        result = train(songs, Path({str(tmp_path / 'm')!r}),
                       TrainSettings(epochs=1, units=16, chunk=16, batch_size=8,
                                     strategy="mirrored", cpu_devices=2))
        assert len(tf.config.list_logical_devices("CPU")) == 2
        print("replicas ok", result.epochs_run)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "m" / "manifest.json").is_file()


def test_multiworker_strategy_with_a_one_worker_cluster(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TF_CONFIG=json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}))
    script = textwrap.dedent(f"""
        from pathlib import Path
        from synth.learn.train import TrainSettings, train
        from synth.music.events import events_of
        from synth.music.songs import Song
        songs = [Song(events=events_of([13, 15, 17, 18, 20, 0] * 8), title=str(i))
                 for i in range(6)]
        train(songs, Path({str(tmp_path / 'm')!r}),
              TrainSettings(epochs=1, units=16, chunk=16, batch_size=8, strategy="multiworker"))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "m" / "manifest.json").is_file()


def test_multiworker_without_tf_config_is_an_error(monkeypatch):
    from synth.learn.train import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SynthError, match="TF_CONFIG"):
        make_strategy("multiworker")


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
    from synth.learn.train import data_digest

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


class Stop:
    """A reporter that stops training (as a kill would) after a given epoch, and keeps what
    training tells the user."""

    def __init__(self, after=None):
        self.after, self.notes, self.epochs = after, [], []

    def start(self, epochs, batches): pass
    def batch(self, epoch, batch, logs): pass

    def epoch(self, epoch, logs):
        self.epochs.append(epoch)
        if epoch == self.after:
            raise KeyboardInterrupt

    def note(self, text):
        self.notes.append(text)


def test_a_resumed_training_ends_as_an_uninterrupted_one(tmp_path):
    from synth.learn.train import TrainSettings, checkpoint_folder, train
    from synth.learn.model import load_model

    settings = TrainSettings(**{**FAST, "epochs": 4})
    whole = train(small_songs(10), tmp_path / "a", settings)
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "b", settings, Stop(after=2))
    assert not (tmp_path / "b").exists() and checkpoint_folder(tmp_path / "b").is_dir()
    resumed = Stop()
    result = train(small_songs(10), tmp_path / "b", settings, resumed)
    assert resumed.notes == [f"Resuming after epoch 2 of 4 from the checkpoint in "
                             f"{checkpoint_folder(tmp_path / 'b')} (--restart starts afresh)."]
    assert resumed.epochs == [2, 3]
    assert result.epochs_run == whole.epochs_run == 4 and result.best_epoch == whole.best_epoch
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not checkpoint_folder(tmp_path / "b").exists()  # gone once the model is written


def test_early_stopping_and_the_time_limit_carry_across_a_resume(tmp_path):
    from synth.learn.train import TrainSettings, train

    # learning rate 1: held-out loss rises from the first epoch, so patience 2 stops at 3
    settings = TrainSettings(**{**FAST, "epochs": 20}, learning_rate=1.0, patience=2)
    whole = train(small_songs(10), tmp_path / "a", settings)
    assert whole.stopped_by == "early stopping"
    stop = whole.epochs_run - 2
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "b", settings, Stop(after=stop))
    result = train(small_songs(10), tmp_path / "b", settings)
    assert (result.stopped_by, result.epochs_run, result.best_epoch) == \
        (whole.stopped_by, whole.epochs_run, whole.best_epoch)
    assert result.held_out.loss == pytest.approx(whole.held_out.loss, rel=1e-6)

    # --max-minutes is not a setting the checkpoint must match: a resumed run may set it
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "c", TrainSettings(**{**FAST, "epochs": 50}),
              Stop(after=1))
    result = train(small_songs(10), tmp_path / "c",
                   TrainSettings(**{**FAST, "epochs": 50}, max_minutes=1e-4))
    assert (result.stopped_by, result.epochs_run) == ("the time limit", 2)


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


def test_a_checkpoint_of_other_settings_or_songs_is_not_resumed(tmp_path):
    from synth.learn.train import TrainSettings, checkpoint_folder, train

    settings = TrainSettings(**{**FAST, "epochs": 3})
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "m", settings, Stop(after=1))
    other = Stop()
    result = train(small_songs(10), tmp_path / "m", TrainSettings(**{**FAST, "epochs": 3},
                                                                  seed=1), other)
    assert other.notes == [f"Starting afresh: the checkpoint in {checkpoint_folder(tmp_path / 'm')} "
                           "cannot be resumed: it is from a different dataset or different "
                           "settings."]
    assert other.epochs == [0, 1, 2] and result.epochs_run == 3
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "m", settings, Stop(after=1))
    fewer = Stop()
    train(small_songs(9), tmp_path / "m", settings, fewer)
    assert "different dataset" in fewer.notes[0] and fewer.epochs == [0, 1, 2]
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "m", settings, Stop(after=1))
    restarted = Stop()
    train(small_songs(10), tmp_path / "m", settings, restarted, restart=True)
    assert restarted.notes == [] and restarted.epochs == [0, 1, 2]


def test_two_workers_on_loopback_train_one_model_written_once_by_the_chief(tmp_path):
    import socket

    from synth.learn.model import load_model
    from synth.music.songs import write_song

    for song in small_songs(8):
        write_song(tmp_path / "dataset" / f"{song.title}.txt", song)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        folder = tmp_path / f"worker{index}"
        folder.mkdir()
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}),
            PYTHONPATH=os.pathsep.join(sys.path))
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "synth.cli", "train", "--dataset", str(tmp_path / "dataset"),
             "--strategy", "multiworker", "--epochs", "2", "--batch-size", "8"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=400)
            assert worker.returncode == 0, err[-3000:]
            outs.append(out)
    finally:
        for worker in workers:
            worker.kill()
    losses = [[line for line in out.splitlines() if line.startswith("epoch ")] for out in outs]
    assert len(losses[0]) == 2 and [l.split(", ")[:2] for l in losses[0]] == \
        [l.split(", ")[:2] for l in losses[1]]  # the same losses: one model, trained together
    assert "model written to model/" in outs[0] and "the chief" in outs[1]
    model = load_model(tmp_path / "worker0" / "model")
    assert model.manifest["training"]["settings"]["strategy"] == "multiworker"
    written = sorted(p.name.split("-")[0] for p in (tmp_path / "worker0" / "model").iterdir())
    assert written == ["manifest.json", "memory", "weights"]  # each once
    assert list((tmp_path / "worker1").iterdir()) == []  # the other worker wrote nothing
    assert [p.name for p in (tmp_path / "worker0").iterdir()] == ["model"]  # no checkpoint


def test_killed_after_the_last_epoch_but_before_the_save_it_only_saves(tmp_path, monkeypatch):
    import synth.learn.train
    from synth.learn.train import TrainSettings, checkpoint_folder, train
    from synth.learn.model import load_model

    settings = TrainSettings(**{**FAST, "epochs": 2})
    whole = train(small_songs(10), tmp_path / "a", settings)
    saving = synth.learn.train.save_model

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth.learn.train, "save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        train(small_songs(10), tmp_path / "b", settings)
    monkeypatch.setattr(synth.learn.train, "save_model", saving)
    again = Stop()
    result = train(small_songs(10), tmp_path / "b", settings, again)
    assert again.notes[0].startswith("Resuming after epoch 2 of 2") and again.epochs == []
    assert (result.epochs_run, result.stopped_by) == (2, "the last epoch")
    a, b = load_model(tmp_path / "a"), load_model(tmp_path / "b")
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not checkpoint_folder(tmp_path / "b").exists()
