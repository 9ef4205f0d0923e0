"""The PPM models: PPM-C as written in the literature (the long-term model), the short-term
model as the long-term one fitted on the song so far, and the long-term tables in the model
folder."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from synth.errors import SynthError
from synth.learn.gate import manifest_entry
from synth.learn.generate import memory_for
from synth.learn.memory import Memory, song_probs
from synth.learn.model import load_model, save_model
from synth.learn.ppm import NUM_CLASSES, LongTerm
from synth.music.events import Event

MOTIF = [Event(13, 4), Event(15, 2), Event(17, 2), Event(18, 4), Event(20, 8), Event(0, 4)]


def reference_ppm(songs, order, symbol, size, context_of):
    """PPM-C, interpolated, from its definition with dicts: p_k(s) = c(s) / (n + t) +
    t / (n + t) * p_(k-1)(s), an unseen context passing p_(k-1) on, order -1 uniform."""
    counts = defaultdict(lambda: np.zeros(size))
    for song in songs:
        for t, event in enumerate(song):
            for k in range(order + 1):
                counts[context_of(song, t, k)][symbol(event)] += 1

    def probs(song, t):
        p = np.full(size, 1.0 / size)
        for k in range(order + 1):
            c = counts.get(context_of(song, t, k))
            if c is not None and c.sum():
                n, kinds = c.sum(), np.count_nonzero(c)
                p = c / (n + kinds) + kinds / (n + kinds) * p
        return p

    return probs


def classes_context(song, t, k):
    padded = [None] * k + [e.cls for e in song[:t]]
    return tuple(padded[len(padded) - k :]) if k else ()


def lengths_context(song, t, k):
    padded = [None] * k + [e.quarters for e in song[:t]]
    return tuple(padded[len(padded) - k :]) if k else ()


def linked_context(song, t, k):
    """The event's class, then the k - 1 events before it (class and length)."""
    if not k:
        return ()
    padded = [None] * (k - 1) + [(e.cls, e.quarters) for e in song[:t]]
    return (song[t].cls,) + tuple(padded[len(padded) - (k - 1):] if k > 1 else ())


def songs_for_tests():
    rng = np.random.default_rng(5)
    songs = [MOTIF * 3]
    for _ in range(6):
        songs.append([Event(int(c), int(q)) for c, q in zip(rng.integers(0, 25, 40),
                                                             rng.choice([2, 4, 8], 40))])
    return songs


@pytest.mark.parametrize("order, length_order, link", [
    (1, 1, False), (3, 3, False), (5, 2, False), (2, 6, False),
    (1, 0, True), (3, 1, True), (2, 3, True), (4, 4, True)])
def test_the_long_term_model_is_ppm_c_interpolated(order, length_order, link):
    """Classes after classes; lengths after lengths, or (linked) after the event's class and
    the events before it."""
    songs = songs_for_tests()
    model = LongTerm.fit(songs[1:], order, length_order, link=link)
    memory = Memory(model)
    classes = reference_ppm(songs[1:], order, lambda e: e.cls, 25, classes_context)
    if link:
        lengths = reference_ppm(songs[1:], length_order + 1, lambda e: e.quarters - 1, 32,
                                linked_context)
    else:
        lengths = reference_ppm(songs[1:], length_order, lambda e: e.quarters - 1, 32,
                                lengths_context)
    for song in (songs[0], songs[1]):
        long, _ = song_probs(memory, song)
        for t in range(len(song)):
            assert long[t, 0, :25] == pytest.approx(classes(song, t))
            assert long[t, 1] == pytest.approx(lengths(song, t))


def test_the_short_term_model_is_the_long_term_model_of_the_song_so_far():
    song = songs_for_tests()[0] + songs_for_tests()[2]
    _, short = song_probs(Memory(None, 4), song)
    for t in (1, 7, 20, len(song) - 1):
        long, _ = song_probs(Memory(LongTerm.fit([song[:t]], 4)), song[: t + 1])
        assert short[t] == pytest.approx(long[t])


def test_the_short_term_model_picks_up_a_motif():
    _, short = song_probs(Memory(None), MOTIF * 4)
    first, last = short[1:6], short[-5:]
    targets = [(e.cls, e.quarters - 1) for e in MOTIF[1:]]
    assert all(last[i, 0, c] > 0.8 and last[i, 1, q] > 0.8 for i, (c, q) in enumerate(targets))
    assert all(first[i, 0, c] < 0.2 for i, (c, _) in enumerate(targets))


def memory_model(tmp_path: Path, songs) -> Path:
    long_term = LongTerm.fit(songs, 3, 4)
    folder = tmp_path / "model"
    save_model(folder, random_weights(seed=3), {"memory": manifest_entry(long_term)},
               long_term.arrays())
    return folder


def test_the_model_folder_keeps_the_tables_as_plain_arrays(tmp_path):
    songs = songs_for_tests()
    folder = memory_model(tmp_path, songs)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["memory"]["enabled"] and manifest["memory"]["long_orders"] == [3, 4]
    tables = folder / manifest["memory"]["tables"]["file"]
    with np.load(tables, allow_pickle=False) as npz:  # plain arrays: no pickle needed
        assert set(npz.files) == {"keys", "symbols", "counts", "orders", "link"}
    model = load_model(folder)
    again = memory_for(model)
    assert again is not None and again.long_term.orders == (3, 4) and again.link
    assert np.array_equal(again.long_term.probs, LongTerm.fit(songs, 3, 4).probs)
    assert memory_for(model, False) is None
    tables.write_bytes(tables.read_bytes()[:-3] + b"xyz")
    with pytest.raises(SynthError, match="does not match its manifest"):
        load_model(folder)


def test_bad_orders_and_damaged_tables_are_errors():
    with pytest.raises(SynthError, match="order"):
        LongTerm.fit(songs_for_tests(), 9)
    with pytest.raises(SynthError, match="order"):
        Memory(None, 0)
    arrays = LongTerm.fit(songs_for_tests(), 2).arrays()
    arrays["symbols"] = arrays["symbols"] + 40
    with pytest.raises(SynthError, match="damaged"):
        LongTerm.from_arrays(arrays)
    with pytest.raises(SynthError, match="damaged"):
        LongTerm.from_arrays({"keys": arrays["keys"]})
    assert NUM_CLASSES == 25
