"""`synth evaluate`: the model's scores on any folder of songs beside an n-gram baseline, and
how much its compositions copy the training songs. NumPy only: no TensorFlow needed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from synth.errors import SynthError
from synth.generate import Sampling, compose, score_songs
from synth.modelfile import Model, load_model
from synth.ngram import best_baseline
from synth.songs import Song, load_dataset, transpositions

RUN = 8  # notes in a run checked for copying
COMPOSED_NOTES = 100


@dataclass
class Metrics:
    loss: float  # nats per predicted note
    accuracy: float
    bits_per_note: float
    notes: int


def metrics_of(model: Model, songs: Sequence[Sequence[int]]) -> Metrics:
    """Loss, accuracy and bits per note of a model on songs, computed by the NumPy cell."""
    logp, hit = score_songs(model, songs)
    if logp.size == 0:
        raise SynthError("no notes to evaluate on: the songs need at least 2 tokens each")
    loss = float(-logp.mean())
    return Metrics(loss, float(hit.mean()), loss / math.log(2), int(logp.size))


@dataclass
class Report:
    songs: list[Song]
    model: Metrics
    baseline_bits: float
    baseline_order: int
    copied: float  # share of composed 8-note runs found verbatim in the training songs
    overlap: int  # songs scored that are also training songs


def copy_share(composed: list[list[int]], training: list[list[int]], run: int = RUN) -> float:
    """Share of `run`-token windows of the composed songs that occur in a training song."""
    known = {tuple(s[i : i + run]) for s in training for i in range(len(s) - run + 1)}
    windows = [tuple(s[i : i + run]) for s in composed for i in range(len(s) - run + 1)]
    return sum(w in known for w in windows) / len(windows) if windows else 0.0


def evaluate(dataset: Path, training: Path, model_dir: Path | None = None,
             songs_to_compose: int = 20) -> Report:
    model = load_model(model_dir)
    songs = load_dataset(dataset)
    train_songs = load_dataset(training)
    held_out = set(model.manifest.get("training", {}).get("held_out_songs", []))
    fit_songs = [s for s in train_songs if s.name not in held_out] or train_songs
    scored = metrics_of(model, [s.tokens for s in songs])
    augmented = [t for s in fit_songs for t in transpositions(s.tokens)]
    baseline, bits = best_baseline(augmented, [s.tokens for s in songs])
    composed = [compose(model, COMPOSED_NOTES, sampling=Sampling(seed=seed))
                for seed in range(songs_to_compose)]
    fit_tokens = {tuple(s.tokens) for s in fit_songs}
    overlap = sum(tuple(s.tokens) in fit_tokens for s in songs)
    return Report(songs=songs, model=scored, baseline_bits=bits, baseline_order=baseline.order,
                  copied=copy_share(composed, [s.tokens for s in fit_songs]), overlap=overlap)



