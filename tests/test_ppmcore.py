"""The compiled memory (synth/_ppmcore.c) against the NumPy code it stands in for: the same
events, the same distributions, the same tables after a live-style take-back, and errors, not
crashes, on bad arrays. Skipped where the extension is not built (synth then runs NumPy), unless
SYNTH_REQUIRE_C is set, as CI sets it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from synth import ppm
from synth.events import Event
from synth.generate import (Melody, Sampling, _draw_mixed, continue_melody, restore, score_songs,
                            state)
from synth.modelfile import Model
from synth.ppm import LongTerm, Memory, ShortTerm, song_probs

try:
    from synth import _ppmcore as core
except ImportError:
    if os.environ.get("SYNTH_REQUIRE_C"):  # CI: the install must have built it
        raise
    pytest.skip("the C extension is not built", allow_module_level=True)
ROOT = Path(__file__).resolve().parent.parent
MOTIF = [Event(13, 4), Event(15, 2), Event(17, 2), Event(18, 4), Event(20, 8), Event(0, 4)]


def some_songs(count=8, seed=5):
    rng = np.random.default_rng(seed)
    songs = [MOTIF * 3]
    for _ in range(count):
        songs.append([Event(int(c), int(q)) for c, q in zip(rng.integers(0, 25, 50),
                                                             rng.choice([1, 2, 3, 4, 6, 8], 50))])
    return songs


@pytest.fixture
def numpy_only(monkeypatch):
    """Objects made inside `with numpy_only():` run the NumPy code alone."""
    class Switch:
        def __enter__(self):
            monkeypatch.setattr(ppm, "core", None)

        def __exit__(self, *exc):
            monkeypatch.setattr(ppm, "core", core)

    return Switch


def tables(memory):
    return memory.short_term.table.copy(), memory.short_term.stats.copy()


def live_style_run(model, long_term, sampling):
    """Primer, 40 events, a mark, 30 events taken back (the part of an answer never heard),
    then 50 more, as synth live does; returns the events, the memory's parts after each stage
    and its tables at the mark and after the take-back."""
    melody = Melody(model, Memory(long_term))
    rng = np.random.default_rng(sampling.seed)
    melody.feed(MOTIF)
    events = continue_melody(melody, 40, sampling, rng)
    parts = [[a.copy() for a in melody.memory.parts()]]
    mark, at_mark = state(melody), tables(melody.memory)
    events += continue_melody(melody, 30, sampling, rng)
    parts.append([a.copy() for a in melody.memory.parts()])
    restore(melody, mark)
    restored = tables(melody.memory)
    parts.append([a.copy() for a in melody.memory.parts()])
    events += continue_melody(melody, 50, sampling, rng)
    parts.append([a.copy() for a in melody.memory.parts()])
    return events, parts, at_mark, restored, melody


@pytest.mark.parametrize("temperature", [1.0, 0.8])
def test_the_compiled_memory_generates_what_numpy_generates(temperature, numpy_only):
    model = Model(random_weights(units=32, scale=0.8))
    long_term = LongTerm.fit(some_songs(), 3, 5)
    sampling = Sampling(temperature=temperature, seed=11)
    fast = live_style_run(model, long_term, sampling)
    assert fast[-1]._cell is not None and fast[-1].memory._core is not None
    with numpy_only():
        slow = live_style_run(model, long_term, sampling)
    assert slow[-1]._cell is None and slow[-1].memory._core is None
    assert fast[0] == slow[0] and len(set(fast[0])) > 10
    for (fast_probs, fast_bits), (slow_probs, slow_bits) in zip(fast[1], slow[1]):
        assert np.allclose(fast_probs, slow_probs, rtol=0, atol=1e-12)
        assert np.allclose(fast_bits, slow_bits, rtol=0, atol=1e-12)
    for fast_table, slow_table in zip(fast[2] + fast[3], slow[2] + slow[3]):
        assert np.array_equal(fast_table, slow_table)
    # Taking back gives the tables of the mark exactly, on both paths.
    assert all(np.array_equal(a, b) for a, b in zip(fast[2], fast[3]))
    assert np.array_equal(fast[-1].h, slow[-1].h) and np.array_equal(fast[-1].c, slow[-1].c)


def test_the_compiled_draw_is_numpys_draw_whatever_the_noise():
    model = Model(random_weights(units=16, scale=1.0))
    melody = Melody(model, Memory(LongTerm.fit(some_songs(), 2, 4)))
    melody.feed(MOTIF * 2)
    memory, mix = melody.memory, melody.mix
    noise = np.random.default_rng(0).gumbel(size=(3000, 57)).astype(np.float32)
    probs, bits = [a.copy() for a in memory.parts()]
    for row in noise:
        cls, length = memory._core.draw(melody.out, melody._length_by_class, row, mix.bias,
                                        mix.length_bias, memory._tagged, memory._slots,
                                        memory._parts, memory._entropies)
        assert cls == _draw_mixed(melody.out[:25], probs[:, 0, :25], bits[:, 0], mix.bias,
                                  row[:25])
        assert length == _draw_mixed(melody.out[25:57] + melody._length_by_class[cls],
                                     probs[:, 1], bits[:, 1], mix.length_bias, row[25:])
    assert np.array_equal(probs, memory._parts) and np.array_equal(bits, memory._entropies)


@pytest.mark.parametrize("long", [True, False])
def test_scoring_reads_the_same_distributions(long, numpy_only):
    long_term = LongTerm.fit(some_songs()[1:], 4, 6) if long else None
    song = some_songs()[0] + some_songs(seed=9)[1]
    fast = song_probs(Memory(long_term), song)
    with numpy_only():
        slow = song_probs(Memory(long_term), song)
    assert (fast[0] is None) == (slow[0] is None) == (not long)
    for a, b in zip(fast, slow):
        if a is not None:
            assert np.allclose(a, b, rtol=0, atol=1e-12)
    model = Model(random_weights())
    scores = score_songs(model, [song], Memory(long_term))
    with numpy_only():
        again = score_songs(model, [song], Memory(long_term))
    assert np.allclose(scores.joint, again.joint, rtol=0, atol=1e-9)


def test_colliding_contexts_count_as_numpy_counts_them(numpy_only):
    """With a table of 4 slots nearly every context shares one; NumPy's fancy indexing counts an
    event once per slot, and the C side must do the same, and take it back the same way."""
    def tiny(memory):
        memory.short_term = ShortTerm(bits=2)
        memory._core = memory._compiled()
        memory.reset()
        return memory

    song = some_songs()[1]
    fast = tiny(Memory(None))
    with numpy_only():
        slow = tiny(Memory(None))
    assert fast._core is not None and slow._core is None
    for memory in (fast, slow):
        for event in song[:20]:
            memory.add(event.cls, event.quarters - 1)
    mark = [memory.state() for memory in (fast, slow)]
    saved = tables(fast)
    for memory in (fast, slow):
        for event in song[20:]:
            memory.add(event.cls, event.quarters - 1)
    assert all(np.array_equal(a, b) for a, b in zip(tables(fast), tables(slow)))
    assert np.allclose(fast.parts()[0], slow.parts()[0], rtol=0, atol=1e-12)
    for memory, saved_state in zip((fast, slow), mark):
        memory.restore(saved_state)
    assert all(np.array_equal(a, b) for a, b in zip(tables(fast), saved))
    assert all(np.array_equal(a, b) for a, b in zip(tables(slow), saved))


def test_bad_arrays_are_errors_not_crashes():
    memory = Memory(LongTerm.fit(some_songs(), 2))
    short, long = memory.short_term, memory.long_term
    args = [long.keys, long.probs, long.entropy, 3, short.table, short.stats, 15, 8]
    for index, bad in [(4, short.table.astype(np.float32)),  # wrong type
                       (4, short.table[:-1]),  # wrong size
                       (4, short.table[:, ::2]),  # not contiguous
                       (0, long.keys.astype(np.int32)),
                       (1, long.probs[:-1]),
                       (4, "table")]:
        with pytest.raises((TypeError, ValueError, BufferError)):
            core.Tables(*args[:index], bad, *args[index + 1:])
    with pytest.raises(ValueError):
        core.Tables(*args[:6], 15, 9)
    tagged, slots = memory._tagged, memory._slots
    draw = memory._core.draw
    heads = np.zeros(64 + 64, dtype=np.float32)
    by_class = np.zeros((25, 32), dtype=np.float32)
    noise = np.zeros(57, dtype=np.float32)
    good = [heads, by_class, noise, 1.0, 0.25, tagged, slots, memory._parts, memory._entropies]
    assert draw(*good) is not None
    read_only = memory._parts.copy()
    read_only.flags.writeable = False
    wrong_slots = slots.copy()
    wrong_slots[0, 0] = short.top + 1
    for index, bad in [(0, heads[:40]), (1, by_class.astype(np.float64)), (2, noise[:-1]),
                       (2, noise.astype(np.float64)), (3, "one"), (5, tagged[:, :5]),
                       (6, wrong_slots), (6, slots.astype(np.int32)), (7, read_only),
                       (8, memory._entropies[:1]), (7, memory._parts[:, :, ::2])]:
        with pytest.raises((TypeError, ValueError, BufferError)):
            draw(*good[:index], bad, *good[index + 1:])
    with pytest.raises(TypeError):
        draw(*good[:-1])
    next_slots, next_tagged = np.empty_like(slots), np.empty_like(tagged)
    for bad in [(25, 0), (0, 32), (-1, 0)]:
        with pytest.raises(ValueError):
            memory._core.add(*bad, slots, tagged, next_slots, next_tagged)
        with pytest.raises(ValueError):
            memory._core.count(*bad, slots, 1)
    with pytest.raises(ValueError):
        memory._core.count(1, 1, slots, 2)
    melody = Melody(Model(random_weights()))
    with pytest.raises(ValueError):
        core.Cell(melody._class_in, melody._length_in[:-1], melody._gate_mul,
                  melody._gate_add, melody.units)
    with pytest.raises(ValueError):
        melody._cell.inputs(np.zeros(10, dtype=np.float32), 1, 1, melody._z)
    with pytest.raises(ValueError):
        melody._cell.inputs(np.zeros(64 + 4 * melody.units, dtype=np.float32), 25, 1, melody._z)
    with pytest.raises(TypeError):
        melody._cell.gates(melody._z.astype(np.float64), melody.c, melody.c.copy())


@pytest.mark.slow
def test_synth_no_c_runs_numpy_alone():
    code = "from synth import ppm; print(ppm.core is None)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for value, expected in [("1", "True"), ("", "False")]:
        done = subprocess.run([sys.executable, "-c", code], env={**env, "SYNTH_NO_C": value},
                              capture_output=True, text=True, check=True)
        assert done.stdout.strip() == expected and not done.stderr
