"""The baselines: interpolated Kneser-Ney n-gram models of symbol sequences (the classes of a
song, or its lengths), NumPy and dicts only.

They tell the user whether the LSTM learned more than note statistics: train and evaluate print
their bits per event beside the LSTM's, on the same held-out songs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from synth.music.notes import NUM_CLASSES


class KneserNey:
    """Interpolated Kneser-Ney with one absolute discount per order (n1 / (n1 + 2 n2))."""

    def __init__(self, songs: Sequence[Sequence[int]], order: int, size: int = NUM_CLASSES):
        if order < 1:
            raise ValueError("order must be at least 1")
        self.order = order
        self.size = size  # symbols 0..size-1; `size` itself marks the song's start
        top = order - 1  # longest context length
        self.counts: list[dict[tuple[int, ...], np.ndarray]] = [{} for _ in range(order)]
        for song in songs:
            padded = [size] * top + list(song)
            for t in range(top + 1, len(padded)):  # targets: symbols 1..n-1 of the song
                context = tuple(padded[t - top : t])
                row = self.counts[top].setdefault(context, np.zeros(size))
                row[padded[t]] += 1
        for k in range(top, 0, -1):  # continuation counts for the lower orders
            lower = self.counts[k - 1]
            for context, row in self.counts[k].items():
                target = lower.setdefault(context[1:], np.zeros(size))
                target += row > 0
        self.discounts = []
        for level in self.counts:
            values = np.concatenate([row for row in level.values()]) if level else np.zeros(1)
            n1, n2 = np.sum(values == 1), np.sum(values == 2)
            d = n1 / (n1 + 2 * n2) if n1 + n2 else 0.75
            self.discounts.append(float(min(max(d, 0.1), 0.9)))
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def probs(self, context: tuple[int, ...]) -> np.ndarray:
        """Distribution of the next token after `context` (exactly order - 1 symbols)."""
        cached = self._cache.get(context)
        if cached is not None:
            return cached
        p = np.full(self.size, 1.0 / self.size)
        for k in range(self.order):
            sub = context[len(context) - k :] if k else ()
            row = self.counts[k].get(sub)
            if row is None or row.sum() == 0:
                continue
            total, d = row.sum(), self.discounts[k]
            p = np.maximum(row - d, 0) / total + d * np.count_nonzero(row) / total * p
        self._cache[context] = p
        return p

    def logprobs(self, songs: Sequence[Sequence[int]]) -> np.ndarray:
        """Natural-log probability of every token 1..n-1 of every song."""
        top = self.order - 1
        out = []
        for song in songs:
            padded = [self.size] * top + list(song)
            for t in range(top + 1, len(padded)):
                out.append(math.log(self.probs(tuple(padded[t - top : t]))[padded[t]]))
        return np.array(out)


def best_baseline(train: Sequence[Sequence[int]], held_out: Sequence[Sequence[int]],
                  orders: Sequence[int] = range(1, 8),
                  size: int = NUM_CLASSES) -> tuple[KneserNey, float]:
    """The order with the fewest held-out bits per symbol; returns the model and its bits."""
    best: tuple[KneserNey, float] | None = None
    for order in orders:
        model = KneserNey(train, order, size)
        bits = float(-model.logprobs(held_out).mean() / math.log(2))
        if best is None or bits < best[1]:
            best = (model, bits)
    assert best is not None
    return best
