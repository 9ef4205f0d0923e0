"""The runtime memory: it takes back exactly what it was told to, follows a whole live session
(forgetting what the player never heard), and the command line switches it on and off."""

from __future__ import annotations

import numpy as np
from conftest import random_weights
from test_ppm import MOTIF, memory_model, songs_for_tests

from synth.learn.generate import Runner, Sampling, restore, state
from synth.learn.memory import Memory
from synth.learn.model import Model, load_model
from synth.learn.ppm import LongTerm
from synth.play.responder import Responder


def snapshot(memory: Memory) -> list[np.ndarray]:
    """Everything the memory would say next, for every class, and its short-term counts."""
    parts = [a.copy() for a in memory.class_parts()]
    for cls in range(25):
        parts += [a.copy() for a in memory.length_parts(cls)]
    return parts + [memory.short_term.table.copy(), memory.short_term.stats.copy()]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_restore_takes_the_memory_back_exactly():
    melody = Runner(Model(random_weights()), Memory(LongTerm.fit(songs_for_tests(), 2)))
    melody.feed(MOTIF)
    saved = state(melody)
    before = snapshot(melody.memory)
    melody.feed(MOTIF[::-1] * 3)
    assert not same(before, snapshot(melody.memory))
    restore(melody, saved)
    assert same(before, snapshot(melody.memory))


def test_live_remembers_the_whole_session_and_forgets_what_was_not_heard(tmp_path):
    model = load_model(memory_model(tmp_path, songs_for_tests()[1:]))
    responder = Responder(model, Sampling(seed=3))
    answer = responder.answer(MOTIF, 6)
    responder.heard(2)
    fresh = Memory(responder.melody.memory.long_term, *responder.melody.memory.orders)
    for event in MOTIF + answer[:2]:
        fresh.add(event.cls, event.quarters - 1)
    assert same(snapshot(responder.melody.memory), snapshot(fresh))
    # The player's motif, played once in the session, raises its own continuation.
    responder.hear(MOTIF[:3])
    probs, _ = responder.melody.memory.class_parts()
    assert probs[-1, MOTIF[3].cls] > 0.3


def test_evaluate_and_compose_switch_the_memory(cli, tmp_path):
    from synth.music.songs import Song, write_song

    for index, song in enumerate(songs_for_tests()):
        write_song(tmp_path / "dataset" / f"song{index}.txt", Song(events=song))
    folder = memory_model(tmp_path, songs_for_tests())
    code, out, err = cli("evaluate", "--model", folder, "--compose", 2)
    assert code == 0, err
    assert "LSTM + memory" in out and "LSTM alone" in out and "IDyOM" in out and "linked" in out
    assert "repeat an earlier run" in out
    code, out, err = cli("evaluate", "--model", folder, "--compose", 2, "--no-memory")
    assert code == 0 and "LSTM alone" not in out and "IDyOM" in out
    for flag in ("--memory", "--no-memory"):
        code, out, err = cli("compose", "--model", folder, "--notes", 20, "--seed", 1, "--out",
                             f"song{flag}.wav", "--tokens", f"song{flag}.txt", flag)
        assert code == 0, err
    assert (tmp_path / "song--memory.txt").read_text() != \
        (tmp_path / "song--no-memory.txt").read_text()
