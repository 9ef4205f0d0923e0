"""Scoring: how well the model, alone or mixed with its memory, predicts the events of songs,
as natural-log probabilities (NumPy only; evaluation and training turn them into bits).

Scoring runs the same cell as generation (synth/learn/generate.py), songs side by side in one
batch, and mixes with the memory exactly as generation mixes (synth/learn/gate.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth.learn.gate import mix
from synth.learn.generate import Runner, mix_settings, softmax
from synth.learn.memory import Memory, song_probs
from synth.learn.model import Model
from synth.music.events import BEAT, NUM_LENGTHS, Event, encode
from synth.music.notes import NUM_CLASSES


@dataclass
class Scores:
    """Natural-log probabilities of events 1..n-1 of every song, flattened over songs."""

    classes: np.ndarray  # log p(class | history)
    lengths: np.ndarray  # log p(length | history, class)
    class_hit: np.ndarray  # the class was the model's top choice
    length_hit: np.ndarray  # the length was the top choice given the class

    @property
    def joint(self) -> np.ndarray:
        return self.classes + self.lengths


def score_songs(model: Model, songs: Sequence[Sequence[Event]], memory: Memory | None = None
                ) -> Scores:
    """How well the model predicts every event after the first of every song; with a memory,
    the model's distributions mixed with the memory's (the short-term model starts each song
    empty), exactly as generation mixes them.

    Songs run side by side as one batch, so a whole dataset takes one pass of matrix products.
    A classes-only model puts all its length probability on one beat.
    """
    songs = [s for s in songs if len(s) > 1]
    if not songs:
        empty = np.zeros(0)
        return Scores(empty, empty, empty.astype(bool), empty.astype(bool))
    melody = Runner(model)
    longest = max(len(s) for s in songs)
    batch = len(songs)
    cls = np.zeros((batch, longest), dtype=np.int64)
    lengths = np.full((batch, longest), BEAT - 1, dtype=np.int64)
    for i, song in enumerate(songs):
        cls[i, : len(song)], lengths[i, : len(song)] = encode(song)
    h = np.zeros((batch, melody.units), dtype=np.float32)
    c = np.zeros((batch, melody.units), dtype=np.float32)
    shape = (batch, longest - 1)
    class_logp = np.zeros((*shape, NUM_CLASSES), dtype=np.float32)
    length_logp = np.zeros((*shape, NUM_LENGTHS), dtype=np.float32)
    for t in range(longest - 1):
        h, c = melody.update(h @ melody.recurrent + melody.inputs(cls[:, t], lengths[:, t]), c)
        out = melody.heads(h).astype(np.float64)
        class_logp[:, t] = _log_softmax(out[:, :NUM_CLASSES])
        length_logp[:, t] = _log_softmax(out[:, NUM_CLASSES:]
                                         + melody.length_by_class[cls[:, t + 1]])
    parts = []
    for i, song in enumerate(songs):
        n = len(song) - 1
        classes, lengths_ = np.exp(class_logp[i, :n]), np.exp(length_logp[i, :n])
        if memory is not None:
            settings = mix_settings(model)
            long, short = song_probs(memory, song)
            extra = [] if long is None else [long[1:]]
            classes = mix([classes, *[x[:, 0] for x in extra], short[1:, 0]], NUM_CLASSES,
                          settings)
            lengths_ = mix([lengths_, *[x[:, 1] for x in extra], short[1:, 1]], NUM_LENGTHS,
                           settings)
        parts.append(target_scores(classes, lengths_, song))
    return Scores(*(np.concatenate(column) for column in zip(*parts)))


def target_scores(classes: np.ndarray, lengths: np.ndarray, song: Sequence[Event]) -> tuple:
    """(log p, hit) of the class and the length of events 1..n-1 of a song, from the
    distributions before them (classes (n - 1, 25), lengths (n - 1, 32)): one song's columns
    of `Scores`."""
    target_class, target_length = encode(song[1:])
    rows = np.arange(len(target_class))
    return (np.log(classes[rows, target_class]), np.log(lengths[rows, target_length]),
            classes.argmax(axis=1) == target_class, lengths.argmax(axis=1) == target_length)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def next_event_probs(model: Model, events: Sequence[Event]) -> tuple[np.ndarray, np.ndarray]:
    """After each prefix of `events`: the class distribution (n, 25), and the length
    distribution given the class that actually follows (n - 1, 32; the last has no class)."""
    melody = Runner(model)
    class_probs, length_probs = [], []
    for index, event in enumerate(events):
        melody.step(event.cls, event.quarters - 1)
        class_probs.append(softmax(melody.class_logits()))
        if index + 1 < len(events):
            length_probs.append(softmax(melody.length_logits(events[index + 1].cls)))
    return np.array(class_probs), np.array(length_probs).reshape(-1, NUM_LENGTHS)
