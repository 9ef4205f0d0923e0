import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from conftest import BLOCK_TENSORFLOW, make_midi, random_weights
from test_layout import TRAINING, modules as layout_modules
from test_ppm import memory_model, songs_for_tests
from synth.errors import SynthError
from synth.music.events import BEAT, Event
from synth.learn.generate import Sampling, compose, draw, memory_for, softmax
from synth.learn.model import Model, load_model
from synth.learn.scores import next_event_probs

ROOT = Path(__file__).parent.parent


def reference_lstm(weights, events):
    """A plain, slow LSTM written from the Keras equations, to check the fast cell against:
    the class distribution after each event, and the length distribution given the class
    that follows."""
    u = weights["lstm_recurrent_kernel"].shape[0]
    lengths = "length_kernel" in weights
    h, c = np.zeros(u), np.zeros(u)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    class_probs, length_probs = [], []
    for index, event in enumerate(events):
        x = np.eye(25)[event.cls]
        if lengths:
            x = np.concatenate([x, np.eye(32)[event.quarters - 1]])
        z = x @ weights["lstm_kernel"] + h @ weights["lstm_recurrent_kernel"] \
            + weights["lstm_bias"]
        i, f, g, o = sig(z[:u]), sig(z[u:2 * u]), np.tanh(z[2 * u:3 * u]), sig(z[3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        class_probs.append(softmax(h @ weights["dense_kernel"] + weights["dense_bias"]))
        if lengths and index + 1 < len(events):
            with_class = np.concatenate([h, np.eye(25)[events[index + 1].cls]])
            length_probs.append(softmax(with_class @ weights["length_kernel"]
                                        + weights["length_bias"]))
    return np.array(class_probs), np.array(length_probs)


def song(*pairs):
    return [Event(c, q) for c, q in pairs]


RHYTHMIC = song((13, 4), (0, 2), (5, 8), (24, 1), (1, 6), (13, 32), (13, 3), (7, 4)) * 4


def test_fast_cell_matches_the_lstm_equations_for_both_heads():
    weights = random_weights(units=16, scale=0.8)
    got_classes, got_lengths = next_event_probs(Model(weights), RHYTHMIC)
    want_classes, want_lengths = reference_lstm(weights, RHYTHMIC)
    assert np.allclose(got_classes, want_classes, atol=1e-5)
    assert np.allclose(got_lengths, want_lengths, atol=1e-5)


def test_a_classes_only_model_reads_classes_and_gives_every_length_one_beat():
    weights = random_weights(units=16, scale=0.8, lengths=False)
    got_classes, got_lengths = next_event_probs(Model(weights), RHYTHMIC)
    assert np.allclose(got_classes, reference_lstm(weights, RHYTHMIC)[0], atol=1e-5)
    assert np.allclose(got_lengths[:, BEAT - 1], 1.0)
    composed = compose(Model(weights), 40, RHYTHMIC[:3], Sampling(seed=1))
    assert {e.quarters for e in composed} == {BEAT}


def test_lengths_change_what_a_rhythm_model_predicts():
    model = Model(random_weights(units=16, scale=0.8))
    a = next_event_probs(model, song((13, 4), (15, 4)))[0][-1]
    b = next_event_probs(model, song((13, 2), (15, 8)))[0][-1]
    assert not np.allclose(a, b)


def test_same_seed_same_song_and_the_state_carries_on(tiny_model):
    model = load_model(tiny_model)
    primer = song((13, 4), (17, 2))
    a = compose(model, 50, primer, Sampling(seed=7))
    assert a == compose(model, 50, primer, Sampling(seed=7))
    assert a != compose(model, 50, primer, Sampling(seed=8))
    assert len(a) == 50 and all(0 <= e.cls <= 24 and 1 <= e.quarters <= 32 for e in a)
    assert len({e.quarters for e in a}) > 1  # a rhythm model draws lengths


def test_primer_changes_the_continuation():
    model = Model(random_weights(scale=2.0))  # weights strong enough for the past to matter

    def after(primer):
        return next_event_probs(model, primer)[0][-1]

    low, high = song((1, 4), (2, 4), (3, 4)), song((20, 4), (22, 4), (24, 4))
    other_rhythm = song((1, 2), (2, 2), (3, 16))
    assert np.abs(after(low) - after(high)).max() > 0.05
    assert np.abs(after(low) - after(other_rhythm)).max() > 0.05  # lengths matter too
    composed = {tuple(compose(model, 30, primer, Sampling(seed=1)))
                for primer in (low, high, other_rhythm)}
    assert len(composed) == 3


def test_unprimed_songs_open_like_training_songs(tmp_path):
    from synth.learn.model import save_model

    opening = np.zeros((25, 32))
    opening[:, 7] = 1.0  # every training song opened with a two-beat note
    save_model(tmp_path / "m", random_weights(), {"start_probs": [0.0] + [1 / 24] * 24,
                                                  "start_lengths": opening.tolist()})
    model = load_model(tmp_path / "m")
    firsts = {compose(model, 1, sampling=Sampling(seed=s))[0] for s in range(40)}
    assert 0 not in {e.cls for e in firsts}  # start_probs gives rests no chance
    assert {e.quarters for e in firsts} == {8}


def test_temperature_and_top_p_apply_to_lengths_too(tiny_model):
    model = load_model(tiny_model)
    cold = compose(model, 300, song((13, 4)), Sampling(seed=2, temperature=0.05))
    hot = compose(model, 300, song((13, 4)), Sampling(seed=2, temperature=5.0))
    assert len({e.quarters for e in cold}) < len({e.quarters for e in hot})
    narrow = compose(model, 300, song((13, 4)), Sampling(seed=2, top_p=0.05))
    assert len({e.quarters for e in narrow}) < len({e.quarters for e in hot})


@pytest.mark.parametrize("notes", [0, -3, 100_001])
def test_notes_out_of_range_are_errors(tiny_model, notes):
    with pytest.raises(SynthError, match="--notes"):
        compose(load_model(tiny_model), notes)


def test_low_temperature_is_nearly_greedy():
    logits = np.random.default_rng(5).permutation(25).astype(float)  # clear winner, gap 1
    rng = np.random.default_rng(0)
    assert {draw(softmax(logits, 0.05), 1.0, rng) for _ in range(200)} == {int(np.argmax(logits))}
    assert len({draw(softmax(logits, 5.0), 1.0, rng) for _ in range(200)}) > 10


def test_top_p_keeps_only_the_likely_notes():
    probs = np.array([0.5, 0.3, 0.15, 0.05] + [0.0] * 21)
    rng = np.random.default_rng(0)
    assert {draw(probs, 0.7, rng) for _ in range(300)} == {0, 1}
    assert {draw(probs, 0.4, rng) for _ in range(100)} == {0}


@pytest.mark.parametrize("sampling", [Sampling(temperature=0), Sampling(temperature=9),
                                      Sampling(top_p=0), Sampling(top_p=1.5)])
def test_bad_sampling_settings_are_errors(tiny_model, sampling):
    with pytest.raises(SynthError, match="out of range"):
        compose(load_model(tiny_model), 5, sampling=sampling)


@pytest.mark.parametrize("command,made", [
    (["compose", "--notes", "20", "--seed", "1", "--out", "x.wav"], "x.wav"),
    (["live", "--input", "replay:p.mid", "--output", "wav:x.wav", "--gap", "0.1"], "x.wav"),
    (["record", "--input", "replay:p.mid", "--count-in", "0"], "dataset/take.txt"),
])
def test_compose_live_and_record_work_when_tensorflow_cannot_be_imported(tmp_path, command,
                                                                          made):
    make_midi(tmp_path / "p.mid", [[(0, 0.2, 60), (0.2, 0.4, 64)]], tempos=[(0, 60)])
    script = BLOCK_TENSORFLOW + (
        f"sys.argv = ['synth', *{command!r}]\n"
        "from synth import cli\n"
        "try:\n"
        "    cli.main()\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)\n"
        f"assert not {sorted(TRAINING)!r} & sys.modules.keys()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / made).stat().st_size > 10


def test_nothing_on_the_compose_or_live_path_imports_tensorflow():
    """Every module but training's own imports without TensorFlow (tests/test_layout.py holds
    the list of training's modules)."""
    modules = sorted(m for m in set(layout_modules()) - TRAINING if not m.endswith(".__main__"))
    script = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
              "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')"
              f" or m in {sorted(TRAINING)!r}]\nprint(bad)\nassert not bad\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_models_from_before_the_memory_compose_as_they_did(tmp_path):
    plain = Model(random_weights(seed=3))
    assert memory_for(plain) is None
    with_memory = load_model(memory_model(tmp_path, songs_for_tests()))
    same = compose(plain, 60, sampling=Sampling(seed=4))
    assert compose(with_memory, 60, sampling=Sampling(seed=4, memory=False)) == same
    mixed = compose(with_memory, 60, sampling=Sampling(seed=4))
    assert mixed != same and mixed == compose(with_memory, 60, sampling=Sampling(seed=4))
    top_p = compose(with_memory, 60, sampling=Sampling(seed=4, top_p=0.8, temperature=0.7))
    assert len(top_p) == 60


def test_composing_with_the_memory_does_not_talk_itself_into_a_loop(monkeypatch):
    """The short-term model hears what is drawn, so unchecked it reinforces a phrase until the
    song is one bar over and over (the shipped model did, in most seeds: the same 8 events up
    to 193 times in 200). From a context's fourth time round it sits out of the draw."""
    import synth.learn.generate as generate

    model = load_model()
    assert memory_for(model) is not None  # the shipped model composes with its memory

    def most_repeated(seeds) -> list[int]:
        counts = []
        for seed in seeds:
            events = compose(model, 200, sampling=Sampling(seed=seed))
            windows = defaultdict(int)
            for i in range(len(events) - 7):
                windows[tuple(events[i: i + 8])] += 1
            counts.append(max(windows.values()))
        return counts

    guarded = most_repeated(range(12))
    assert max(guarded) <= 10 and sum(guarded) <= 60
    # The same with top-p (the draw that mixes through `gate.mix`).
    for seed in range(4):
        events = compose(model, 200, sampling=Sampling(seed=seed, top_p=0.9))
        windows = defaultdict(int)
        for i in range(len(events) - 7):
            windows[tuple(events[i: i + 8])] += 1
        assert max(windows.values()) <= 10
    monkeypatch.setattr(generate, "LOOP_COUNT", 10**9)  # without the guard: loops
    assert max(most_repeated(range(12))) >= 50
