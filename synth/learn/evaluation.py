"""`synth evaluate`: the model's scores on any folder of songs, with and without its PPM
memory, beside the baselines people compare against (a Kneser-Ney n-gram, and the IDyOM-style
PPM long-term + short-term mix), and how much its compositions copy the training songs. NumPy
only: no TensorFlow needed.

Scores are bits per event: for the class, for the length given the class, and their sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from synth.errors import SynthError
from synth.learn.gate import MixSettings, fit_gate, mix
from synth.learn.generate import Sampling, compose, memory_for, memory_settings, mix_settings
from synth.learn.memory import Memory, song_probs
from synth.learn.model import Model, load_model
from synth.learn.ngram import best_baseline
from synth.learn.ppm import LONG_ORDER, SHORT_ORDER, UNLINKED_LENGTH_ORDER, LongTerm
from synth.learn.scores import Scores, next_event_probs, score_songs, target_scores
from synth.music.events import NUM_LENGTHS, Event
from synth.music.notes import NUM_CLASSES
from synth.music.songs import Song, load_dataset, transpositions

RUN = 8  # events in a run checked for copying
COMPOSED_EVENTS = 100
MAX_COMPOSED = 1000  # --compose: songs composed for the copying check


@dataclass
class Metrics:
    """How well a model predicts songs, per event after each song's first."""

    events: int
    loss: float  # nats per event, class and length together (the training loss)
    class_bits: float
    length_bits: float  # the length, given the class
    joint_bits: float
    class_accuracy: float
    length_accuracy: float  # given the class


def metrics_of(model: Model, songs: Sequence[Sequence[Event]], memory: Memory | None = None
               ) -> Metrics:
    """The model's scores on songs, computed by the NumPy cell (mixed with the memory if one
    is given)."""
    return _metrics(score_songs(model, songs, memory))


def ppm_metrics(long_term: LongTerm, songs: Sequence[Sequence[Event]],
                settings: MixSettings = MixSettings(), short_orders: tuple | None = None
                ) -> Metrics:
    """The PPM baseline's scores: long-term and short-term models mixed by entropy weights,
    through the same `mix` as the LSTM's memory, without the LSTM."""
    memory = Memory(long_term, *(short_orders or ()))
    parts = []
    for song in songs:
        if len(song) < 2:
            continue
        long, short = song_probs(memory, song)
        parts.append(target_scores(mix([long[1:, 0], short[1:, 0]], NUM_CLASSES, settings),
                                   mix([long[1:, 1], short[1:, 1]], NUM_LENGTHS, settings),
                                   song))
    if not parts:
        raise SynthError("no events to evaluate on: the songs need at least 2 events each")
    return _metrics(Scores(*(np.concatenate(column) for column in zip(*parts))))


BASELINE_MIX = MixSettings(bias=0.5, length_bias=0.25)


def idyom_baseline(training: Sequence[Sequence[Event]], songs: Sequence[Sequence[Event]]
                   ) -> Metrics:
    """The PPM baseline as IDyOM-style studies build it: a long-term model fitted on the
    training songs and a short-term one, each reading classes after classes and lengths after
    lengths (not linked to the event's class), mixed by entropy weights with the biases that
    suit it best on the benchmark's validation slice (0.5 for classes, 0.25 for lengths)."""
    return ppm_metrics(LongTerm.fit(training, LONG_ORDER, UNLINKED_LENGTH_ORDER, link=False),
                       songs, BASELINE_MIX, (SHORT_ORDER, SHORT_ORDER))


def fit_gates(model: Model, long_term: LongTerm | None, songs: Sequence[Sequence[Event]],
              settings: MixSettings = MixSettings()) -> MixSettings:
    """`settings` with a gate per head fitted on `songs` (held-out songs, never training
    songs: the LSTM is surer of those than of new ones), from the LSTM's distributions and the
    memory's (`fit_gate`)."""
    songs = [s for s in songs if len(s) > 1]
    if not songs:
        return settings
    memory = Memory(long_term)
    heads: list[list] = [[], []]
    for song in songs:
        classes, lengths = next_event_probs(model, song)
        long, short = song_probs(memory, song)
        memory_parts = ([] if long is None else [long[1:]]) + [short[1:]]
        heads[0].append([classes[:-1], *[p[:, 0] for p in memory_parts]])
        heads[1].append([lengths, *[p[:, 1] for p in memory_parts]])
    classes_target = np.concatenate([[e.cls for e in s[1:]] for s in songs])
    lengths_target = np.concatenate([[e.quarters - 1 for e in s[1:]] for s in songs])
    gates = [fit_gate([np.concatenate(column) for column in zip(*head)], target, size,
                      settings.bias_for(size))
             for head, target, size in zip(heads, (classes_target, lengths_target),
                                           (NUM_CLASSES, NUM_LENGTHS))]
    return replace(settings, class_gate=gates[0], length_gate=gates[1])


def _metrics(scores) -> Metrics:
    if scores.classes.size == 0:
        raise SynthError("no events to evaluate on: the songs need at least 2 events each")
    bits = 1 / math.log(2)
    return Metrics(events=int(scores.classes.size), loss=float(-scores.joint.mean()),
                   class_bits=float(-scores.classes.mean() * bits),
                   length_bits=float(-scores.lengths.mean() * bits),
                   joint_bits=float(-scores.joint.mean() * bits),
                   class_accuracy=float(scores.class_hit.mean()),
                   length_accuracy=float(scores.length_hit.mean()))


@dataclass
class Baselines:
    """Kneser-Ney n-grams fitted to the training songs: one over classes (on every
    transposition, as the LSTM sees them), one over lengths; each at its best order."""

    class_order: int
    class_bits: float
    length_order: int
    length_bits: float

    @property
    def joint_bits(self) -> float:
        return self.class_bits + self.length_bits


def baselines(training: Sequence[Sequence[Event]], scored: Sequence[Sequence[Event]]
              ) -> Baselines:
    """The n-gram baselines fitted to `training` (already transposed or not: transpositions
    leave lengths alone, so repeated length sequences are fitted once) and scored on `scored`."""
    classes = [[e.cls for e in song] for song in training]
    unique_lengths = list({tuple(e.quarters - 1 for e in song): None for song in training})
    class_model, class_bits = best_baseline(classes, [[e.cls for e in s] for s in scored])
    length_model, length_bits = best_baseline(
        unique_lengths, [[e.quarters - 1 for e in s] for s in scored], size=NUM_LENGTHS)
    return Baselines(class_model.order, class_bits, length_model.order, length_bits)


@dataclass
class Report:
    songs: list[Song]
    model: Metrics  # as configured: with the memory unless it is off
    baselines: Baselines
    ppm: Metrics  # the PPM long-term + short-term baseline, IDyOM-style (lengths unlinked)
    linked_ppm: Metrics  # the memory's own PPM models without the LSTM (lengths linked)
    without_memory: Metrics | None  # the LSTM alone, when `model` has the memory
    copied: float  # share of composed 8-event runs found verbatim in the training songs
    copied_by_songs: float  # the same share for the songs scored: what real songs share
    repeated: float  # share of composed 8-event runs that repeat an earlier run of their song
    repeated_by_songs: float  # the same share for the songs scored, over as many events
    overlap: int  # songs scored that are also training songs
    classes_only: bool  # a format-1 model: its length scores mean nothing


def copy_share(composed: Sequence[Sequence[Event]], training: Sequence[Sequence[Event]],
               run: int = RUN) -> float:
    """Share of `run`-event windows (class and length) of the composed songs that occur in a
    training song."""
    known = {tuple(s[i : i + run]) for s in training for i in range(len(s) - run + 1)}
    windows = [tuple(s[i : i + run]) for s in composed for i in range(len(s) - run + 1)]
    return sum(w in known for w in windows) / len(windows) if windows else 0.0


def repeat_share(songs: Sequence[Sequence[Event]], run: int = RUN) -> float:
    """Share of `run`-event windows (class and length) that repeat an earlier window of the
    same song: how much a melody comes back to its own material."""
    repeated = total = 0
    for song in songs:
        seen = set()
        for i in range(len(song) - run + 1):
            window = tuple(song[i: i + run])
            repeated += window in seen
            total += 1
            seen.add(window)
    return repeated / total if total else 0.0


def long_term_of(model: Model, training: Sequence[Sequence[Event]]) -> LongTerm:
    """The model's long-term PPM, or one fitted on `training` if the model has none."""
    if model.memory_tables:
        return LongTerm.from_arrays(model.memory_tables)
    orders = memory_settings(model).get("long_orders")
    return LongTerm.fit(training) if not orders else LongTerm.fit(training, *map(int, orders))


def evaluate(dataset: Path, training: Path, model_dir: Path | None = None,
             songs_to_compose: int = 20, memory: bool | None = None) -> Report:
    if not 1 <= songs_to_compose <= MAX_COMPOSED:
        raise SynthError(f"--compose {songs_to_compose} is out of range: expected "
                         f"1-{MAX_COMPOSED} songs")
    model = load_model(model_dir)
    songs = load_dataset(dataset)
    train_songs = load_dataset(training)
    held_out = set(model.manifest.get("training", {}).get("held_out_songs", []))
    fit_songs = [s for s in train_songs if s.name not in held_out] or train_songs
    events = [s.events for s in songs]
    long_term = long_term_of(model, [s.events for s in fit_songs])
    if memory is None:
        memory = memory_settings(model).get("enabled", False)
    alone = metrics_of(model, events)
    scored = metrics_of(model, events, _memory(model, long_term)) if memory else alone
    ppm = idyom_baseline([s.events for s in fit_songs], events)
    own = _memory(model, long_term)
    linked_ppm = ppm_metrics(long_term, events, mix_settings(model), own.orders)
    augmented = [t for s in fit_songs for t in transpositions(s.events)]
    compared = baselines(augmented, events)
    composed = [compose(model, COMPOSED_EVENTS, sampling=Sampling(seed=seed, memory=memory))
                for seed in range(songs_to_compose)]
    fit_events = [s.events for s in fit_songs]
    fit_set = {tuple(s) for s in fit_events}
    overlap = sum(tuple(s.events) in fit_set for s in songs)
    outside = [s.events for s in songs if tuple(s.events) not in fit_set]
    return Report(songs=songs, model=scored, baselines=compared, ppm=ppm, linked_ppm=linked_ppm,
                  without_memory=alone if memory else None,
                  copied=copy_share(composed, fit_events),
                  copied_by_songs=copy_share(outside, fit_events),
                  repeated=repeat_share(composed),
                  repeated_by_songs=repeat_share([s[:COMPOSED_EVENTS] for s in events
                                                  if len(s) >= COMPOSED_EVENTS]),
                  overlap=overlap,
                  classes_only=not model.has_lengths)


def _memory(model: Model, long_term: LongTerm) -> Memory:
    """The model's memory, its long-term part `long_term` (fitted here if the model has none)."""
    memory = memory_for(model, True)
    assert memory is not None
    return Memory(long_term, *memory.orders)
