import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_midi, random_weights
from synth.errors import SynthError
from synth.generate import (Sampling, compose, draw, next_token_probs, score_songs,
                            softmax)
from synth.modelfile import Model, load_model

ROOT = Path(__file__).parent.parent


def reference_lstm(weights, tokens):
    """A plain, slow LSTM written from the Keras equations, to check the fast cell against."""
    u = weights["lstm_recurrent_kernel"].shape[0]
    h, c = np.zeros(u), np.zeros(u)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    out = []
    for t in tokens:
        z = np.eye(25)[t] @ weights["lstm_kernel"] + h @ weights["lstm_recurrent_kernel"] \
            + weights["lstm_bias"]
        i, f, g, o = sig(z[:u]), sig(z[u:2 * u]), np.tanh(z[2 * u:3 * u]), sig(z[3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(softmax(h @ weights["dense_kernel"] + weights["dense_bias"]))
    return np.array(out)


def test_fast_cell_matches_the_lstm_equations():
    weights = random_weights(units=16, scale=0.8)
    tokens = [13, 0, 5, 24, 1, 13, 13, 7] * 4
    got = next_token_probs(Model(weights), tokens)
    assert np.allclose(got, reference_lstm(weights, tokens), atol=1e-5)


def test_batched_scoring_matches_step_by_step():
    model = Model(random_weights(seed=3))
    songs = [[13, 15, 17, 0, 18], [1, 2], [24, 23, 22, 21, 20, 19, 18]]
    logp, hit = score_songs(model, songs)
    expected, expected_hit = [], []
    for song in songs:
        probs = next_token_probs(model, song[:-1])
        expected += [np.log(p[t]) for p, t in zip(probs, song[1:])]
        expected_hit += [p.argmax() == t for p, t in zip(probs, song[1:])]
    assert np.allclose(logp, expected, atol=1e-5)
    assert hit.tolist() == expected_hit


def test_same_seed_same_song_and_the_state_carries_on(tiny_model):
    model = load_model(tiny_model)
    a = compose(model, 50, [13, 17], Sampling(seed=7))
    assert a == compose(model, 50, [13, 17], Sampling(seed=7))
    assert a != compose(model, 50, [13, 17], Sampling(seed=8))
    assert len(a) == 50 and all(0 <= t <= 24 for t in a)


def test_primer_changes_the_continuation(tiny_model):
    model = load_model(tiny_model)
    assert compose(model, 30, [1, 2, 3], Sampling(seed=1)) != \
        compose(model, 30, [20, 22, 24], Sampling(seed=1))


def test_unprimed_songs_open_like_training_songs(tiny_model):
    model = load_model(tiny_model)
    firsts = {compose(model, 1, sampling=Sampling(seed=s))[0] for s in range(40)}
    assert 0 not in firsts  # start_probs gives rests no chance


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
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
        "            raise ImportError('tensorflow is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.argv = ['synth', *{command!r}]\n"
        "from synth import cli\n"
        "try:\n"
        "    cli.main()\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)\n"
        "assert 'synth.model' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / made).stat().st_size > 10


def test_nothing_on_the_compose_or_live_path_imports_tensorflow():
    modules = ["synth.cli", "synth.generate", "synth.piano", "synth.effects", "synth.audio",
               "synth.modelfile", "synth.evaluation", "synth.midi", "synth.songs",
               "synth.inputs", "synth.record", "synth.live", "synth.devices"]
    script = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
              "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')"
              " or m == 'synth.model']\nprint(bad)\nassert not bad\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
