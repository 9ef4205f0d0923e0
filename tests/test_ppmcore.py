"""The compiled memory (synth/learn/_ppmcore.c) against the NumPy code it stands in for: the same
events, the same distributions (the class's, and the length's for every class), the same tables
after a live-style take-back, for linked lengths, unlinked lengths (models from before) and no
long-term model, with a fitted gate; and errors, not crashes, on bad arrays. Skipped where the
extension is not built (synth then runs NumPy), unless SYNTH_REQUIRE_C is set, as CI sets it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from synth.learn import compiled
from synth.learn.gate import Gate, MixSettings, manifest_entry
from synth.learn.generate import (Runner, Sampling, _draw_mixed, compose, continue_melody, restore,
                                  state)
from synth.learn.memory import UNDO, Memory, song_probs
from synth.learn.model import Model
from synth.learn.ppm import LongTerm, ShortTerm
from synth.learn.scores import score_songs
from synth.music.events import Event

try:
    from synth.learn import _ppmcore as core
except ImportError:
    if os.environ.get("SYNTH_REQUIRE_C"):  # CI: the install must have built it
        raise
    pytest.skip("the C extension is not built", allow_module_level=True)
ROOT = Path(__file__).resolve().parent.parent
MOTIF = [Event(13, 4), Event(15, 2), Event(17, 2), Event(18, 4), Event(20, 8), Event(0, 4)]
KINDS = ["linked", "unlinked", "short-term only"]
# A gate far from IDyOM's: each model its own offset and bias (the LSTM first).
GATES = {3: (Gate((0.0, -1.0, -0.5), (1.2, 0.4, 0.8)), Gate((0.0, -0.7, -1.2), (0.3, 0.9, 0.6))),
         2: (Gate((0.0, -0.8), (1.5, 0.6)), Gate((0.0, -0.5), (0.4, 1.1)))}


def some_songs(count=8, seed=5):
    rng = np.random.default_rng(seed)
    songs = [MOTIF * 3]
    for _ in range(count):
        songs.append([Event(int(c), int(q)) for c, q in zip(rng.integers(0, 25, 50),
                                                             rng.choice([1, 2, 3, 4, 6, 8], 50))])
    return songs


def long_term_of(kind: str) -> LongTerm | None:
    if kind == "linked":
        return LongTerm.fit(some_songs(), 3, 3)
    if kind == "unlinked":
        return LongTerm.fit(some_songs(), 4, 5, link=False)
    return None


def memory_of(kind: str) -> Memory:
    return Memory(long_term_of(kind), link=kind != "unlinked")


def gated_model(kind: str, units: int = 32) -> Model:
    """A random model whose manifest carries a fitted gate for this kind of memory."""
    models = 2 + (kind != "short-term only")
    classes, lengths = GATES[models]
    settings = MixSettings(class_gate=classes, length_gate=lengths)
    return Model(random_weights(units=units, scale=0.5),
                 {"memory": manifest_entry(long_term_of(kind), settings)})


@pytest.fixture(autouse=True)
def compiled_path(monkeypatch):
    """Objects made in these tests take the compiled path, even under SYNTH_NO_C."""
    monkeypatch.setattr(compiled, "core", core)


@pytest.fixture
def numpy_only(monkeypatch):
    """Objects made inside `with numpy_only():` run the NumPy code alone."""
    class Switch:
        def __enter__(self):
            monkeypatch.setattr(compiled, "core", None)

        def __exit__(self, *exc):
            monkeypatch.setattr(compiled, "core", core)

    return Switch


def tables(memory):
    return memory.short_term.table.copy(), memory.short_term.stats.copy()


def snapshot(memory):
    """Everything the memory would say next: the class parts, the length parts of every class."""
    parts = [a.copy() for a in memory.class_parts()]
    for cls in range(25):
        parts += [a.copy() for a in memory.length_parts(cls)]
    return parts


def live_style_run(model, kind, sampling):
    """Primer, 40 events, a mark, 30 events taken back (the part of an answer never heard),
    then 50 more, as synth live does; returns the events, the memory's snapshots after each
    stage, its tables at each stage, and the melody."""
    melody = Runner(model, memory_of(kind))
    memory = melody.memory
    rng = np.random.default_rng(sampling.seed)
    melody.feed(MOTIF)
    events = continue_melody(melody, 40, sampling, rng)
    said, counts = [snapshot(memory)], [tables(memory)]
    mark = state(melody)
    events += continue_melody(melody, 30, sampling, rng)
    said.append(snapshot(memory))
    counts.append(tables(memory))
    restore(melody, mark)
    said.append(snapshot(memory))
    counts.append(tables(memory))
    events += continue_melody(melody, 50, sampling, rng)
    said.append(snapshot(memory))
    counts.append(tables(memory))
    return events, said, counts, melody


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("temperature", [1.0, 0.8])
def test_the_compiled_memory_generates_what_numpy_generates(kind, temperature, numpy_only):
    model = gated_model(kind)
    sampling = Sampling(temperature=temperature, seed=11)
    fast = live_style_run(model, kind, sampling)
    assert fast[-1]._cell is not None and fast[-1].memory._core is not None
    assert fast[-1].gates == GATES[len(fast[-1].gates[0].offsets)]
    with numpy_only():
        slow = live_style_run(model, kind, sampling)
    assert slow[-1]._cell is None and slow[-1].memory._core is None
    assert fast[0] == slow[0] and len(set(fast[0])) > 10
    for fast_said, slow_said in zip(fast[1], slow[1]):
        assert len(fast_said) == len(slow_said) == 52
        for a, b in zip(fast_said, slow_said):
            assert np.allclose(a, b, rtol=0, atol=1e-12)
    for fast_counts, slow_counts in zip(fast[2], slow[2]):
        assert all(np.array_equal(a, b) for a, b in zip(fast_counts, slow_counts))
    # Taking back gives the tables of the mark exactly.
    assert all(np.array_equal(a, b) for a, b in zip(fast[2][0], fast[2][2]))
    assert not all(np.array_equal(a, b) for a, b in zip(fast[2][0], fast[2][1]))
    assert np.array_equal(fast[-1].h, slow[-1].h) and np.array_equal(fast[-1].c, slow[-1].c)


def test_compose_with_the_memory_gives_the_same_song_on_both_paths(numpy_only):
    long_term = long_term_of("linked")
    model = gated_model("linked")
    model.memory_tables = long_term.arrays()
    sampling = Sampling(seed=3, memory=True)
    fast = compose(model, 300, MOTIF, sampling)
    with numpy_only():
        slow = compose(model, 300, MOTIF, sampling)
    assert fast == slow and len(set(fast)) > 20
    assert fast != compose(model, 300, MOTIF, Sampling(seed=3, memory=False))


@pytest.mark.parametrize("kind", KINDS)
def test_the_compiled_draw_is_numpys_draw_whatever_the_noise(kind, numpy_only):
    model = gated_model(kind, units=16)
    fast = Runner(model, memory_of(kind))
    with numpy_only():
        slow = Runner(model, memory_of(kind))
    for melody in (fast, slow):
        melody.feed(MOTIF * 2 + some_songs()[1][:20])
    gates = fast.gates
    assert len(set(gates[0].offsets)) == len(gates[0].offsets) and gates[0] != gates[1]
    noise = np.random.default_rng(0).gumbel(size=(3000, 57)) * np.repeat([0.3, 1.0, 3.0], 1000)[
        :, None]
    drawn = set()
    for row in noise.astype(np.float32):
        if fast.memory._gates is not fast.gates:
            fast.memory.use_gates(fast.gates)
        cls, length = fast.memory._core.draw(fast.memory._now, fast.out, fast.length_by_class,
                                             row)
        probs, bits = slow.memory.class_parts()
        assert cls == _draw_mixed(slow.out[:25], probs[:, :25], bits, gates[0], row[:25])
        probs, bits = slow.memory.length_parts(cls)
        assert length == _draw_mixed(slow.out[25:57] + slow.length_by_class[cls], probs, bits,
                                     gates[1], row[25:])
        drawn.add((cls, length))
    assert len(drawn) > 100


@pytest.mark.parametrize("kind", KINDS)
def test_scoring_reads_the_same_distributions(kind, numpy_only):
    song = some_songs()[0] + some_songs(seed=9)[1]
    fast = song_probs(memory_of(kind), song)
    with numpy_only():
        slow = song_probs(memory_of(kind), song)
    assert (fast[0] is None) == (slow[0] is None) == (kind == "short-term only")
    for a, b in zip(fast, slow):
        if a is not None:
            assert np.allclose(a, b, rtol=0, atol=1e-12)
    model = gated_model(kind)
    scores = score_songs(model, [song], memory_of(kind))
    with numpy_only():
        again = score_songs(model, [song], memory_of(kind))
    assert np.allclose(scores.joint, again.joint, rtol=0, atol=1e-9)


def tiny(memory: Memory) -> Memory:
    """The memory with a short-term table of 4 slots: nearly every context shares one."""
    memory.short_term = ShortTerm(bits=2)
    memory._core = memory._compiled()
    memory.reset()
    return memory


@pytest.mark.parametrize("kind", ["linked", "unlinked"])
def test_colliding_contexts_count_as_numpy_counts_them(kind, numpy_only):
    """ShortTerm.add counts a slot two contexts share once; the C side must do the same, and
    take it back the same way."""
    song = some_songs()[1]
    fast = tiny(memory_of(kind))
    with numpy_only():
        slow = tiny(memory_of(kind))
    assert fast._core is not None and slow._core is None
    for memory in (fast, slow):
        for event in song[:20]:
            memory.add(event.cls, event.quarters - 1)
    mark = [memory.state() for memory in (fast, slow)]
    saved = tables(fast)
    assert all(np.array_equal(a, b) for a, b in zip(saved, tables(slow)))
    for memory in (fast, slow):
        for event in song[20:]:
            memory.add(event.cls, event.quarters - 1)
    assert all(np.array_equal(a, b) for a, b in zip(tables(fast), tables(slow)))
    for a, b in zip(snapshot(fast), snapshot(slow)):
        assert np.allclose(a, b, rtol=0, atol=1e-12)
    for memory, saved_state in zip((fast, slow), mark):
        memory.restore(saved_state)
    assert all(np.array_equal(a, b) for a, b in zip(tables(fast), saved))
    assert all(np.array_equal(a, b) for a, b in zip(tables(slow), saved))
    for a, b in zip(snapshot(fast), snapshot(slow)):
        assert np.allclose(a, b, rtol=0, atol=1e-12)


def test_a_take_back_past_the_undo_log_does_what_numpy_does(numpy_only):
    """Past UNDO events the log has forgotten the oldest: both paths take back what it holds
    and return to the position saved."""
    events = (some_songs()[1] * 50)[: UNDO + 100]
    fast = memory_of("linked")
    with numpy_only():
        slow = memory_of("linked")
    marks = []
    for memory in (fast, slow):
        memory.add(3, 3)
        marks.append(memory.state())
        for event in events:
            memory.add(event.cls, event.quarters - 1)
    for memory, mark in zip((fast, slow), marks):
        memory.restore(mark)
    assert all(np.array_equal(a, b) for a, b in zip(tables(fast), tables(slow)))
    for a, b in zip(snapshot(fast), snapshot(slow)):
        assert np.allclose(a, b, rtol=0, atol=1e-12)


def test_bad_arrays_are_errors_not_crashes():
    memory = memory_of("linked")
    short, long = memory.short_term, memory.long_term
    args = [long.keys, long.probs, long.entropy, short.table, short.stats, 15, True,
            memory._sizes, memory._long_widths, memory._short_widths]
    assert core.Tables(*args) is not None
    for index, bad in [(3, short.table.astype(np.float32)),  # wrong type
                       (3, short.table[:-1]),  # wrong size
                       (3, short.table[:, ::2]),  # not contiguous
                       (0, long.keys.astype(np.int32)),
                       (0, long.keys[:0]),  # an empty long-term model
                       (1, long.probs[:-1]),
                       (2, long.entropy[:-1]),
                       (3, "table"),
                       (5, 31),  # bits
                       (7, (10, 4)),  # more history than there is
                       (8, (4, 7)),  # a lookup wider than the contexts
                       (9, (0, 3)),
                       (9, (3,))]:
        with pytest.raises((TypeError, ValueError, BufferError)):
            core.Tables(*args[:index], bad, *args[index + 1:])
    tables_ = memory._core
    now = memory._now
    probs, bits = memory._probs, memory._entropies
    assert tables_.parts(now, 1, 24, probs, bits) is None
    read_only = probs.copy()
    read_only.flags.writeable = False
    as_array = np.frombuffer(now, np.int64)
    for bad_args in [(now[:-8], 0, 0, probs, bits), (as_array, 0, 0, probs, bits),
                     ("now", 0, 0, probs, bits), (now, 2, 0, probs, bits),
                     (now, 1, 25, probs, bits),
                     (now, 1, -1, probs, bits), (now, 0, 0, read_only, bits),
                     (now, 0, 0, probs[:1], bits), (now, 0, 0, probs, bits[:1]),
                     (now, 0, 0, probs.astype(np.float32), bits), (now, "one", 0, probs, bits)]:
        with pytest.raises((TypeError, ValueError, BufferError)):
            tables_.parts(*bad_args)
    with pytest.raises(TypeError):
        tables_.parts(now, 0, 0, probs)
    heads = np.zeros(64 + 64, dtype=np.float32)
    by_class = np.zeros((25, 32), dtype=np.float32)
    noise = np.zeros(57, dtype=np.float32)
    good = [now, heads, by_class, noise]
    with pytest.raises(ValueError, match="gates"):  # no gates yet
        tables_.draw(*good)
    gate = np.array([[[0.0, 0.5, -0.5], [1.0, 1.0, 2.0]]] * 2)
    for bad in [gate[:, :, :2], gate.astype(np.float32), np.where(gate == 2.0, np.nan, gate)]:
        with pytest.raises((TypeError, ValueError)):
            tables_.gates(bad)
    tables_.gates(gate)
    assert tables_.draw(*good) is not None
    for index, bad in [(0, now + b"\0" * 8), (1, heads[:40]), (2, by_class.astype(np.float64)),
                       (3, noise[:-1]), (3, noise.astype(np.float64)), (2, by_class[:, ::2])]:
        with pytest.raises((TypeError, ValueError, BufferError)):
            tables_.draw(*good[:index], bad, *good[index + 1:])
    with pytest.raises(TypeError):
        tables_.draw(*good[:-1])
    before = tables(memory)
    for bad in [(25, 0), (0, 32), (-1, 0), (0, -1), ("one", 0)]:
        with pytest.raises((TypeError, ValueError)):
            tables_.add(now, *bad)
        with pytest.raises((TypeError, ValueError)):
            tables_.take_back(now, *bad)
    with pytest.raises(ValueError):
        tables_.add(now[:-1], 1, 1)
    assert all(np.array_equal(a, b) for a, b in zip(before, tables(memory)))  # nothing counted
    assert isinstance(tables_.add(now, 1, 1), bytes)
    melody = Runner(Model(random_weights()))
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
    code = "from synth.learn import compiled; print(compiled.core is None)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for value, expected in [("1", "True"), ("", "False")]:
        done = subprocess.run([sys.executable, "-c", code], env={**env, "SYNTH_NO_C": value},
                              capture_output=True, text=True, check=True)
        assert done.stdout.strip() == expected and not done.stderr
