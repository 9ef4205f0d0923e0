"""Generation in NumPy: the trained LSTM cell, run note by note, and sampling (SPEC section 5).

Never imports TensorFlow. The cell is Keras's LSTM (gates i, f, c, o; sigmoid and tanh) with a
one-hot input, so the input product is a row lookup. Sigmoid gates are computed as
0.5 * tanh(x / 2) + 0.5 so one tanh call serves all four gates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth.errors import SynthError
from synth.modelfile import Model
from synth.notes import NUM_CLASSES


@dataclass(frozen=True)
class Sampling:
    """How to draw the next note from the model's distribution."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None

    def check(self) -> "Sampling":
        if not (0.05 <= self.temperature <= 5.0):
            raise SynthError(f"--temperature {self.temperature:g} is out of range: "
                             "expected 0.05-5 (lower is safer, higher is wilder)")
        if not (0.0 < self.top_p <= 1.0):
            raise SynthError(f"--top-p {self.top_p:g} is out of range: expected above 0, up to 1")
        return self


class Melody:
    """A running LSTM: feed notes, read the next-note distribution; the state carries on."""

    def __init__(self, model: Model):
        w = model.weights
        units = model.units
        # Halve the sigmoid gates' pre-activations so tanh computes them (see module doc).
        scale = np.full(4 * units, 0.5, dtype=np.float32)
        scale[2 * units : 3 * units] = 1.0
        self._input = ((w["lstm_kernel"] + w["lstm_bias"]) * scale).astype(np.float32)
        self._recurrent = np.ascontiguousarray(w["lstm_recurrent_kernel"] * scale,
                                               dtype=np.float32)
        self._gate_mul = scale.copy()  # 0.5 on sigmoid gates, 1 on the cell gate
        self._gate_add = np.where(scale == 0.5, 0.5, 0.0).astype(np.float32)
        self._dense = np.ascontiguousarray(w["dense_kernel"], dtype=np.float32)
        self._dense_bias = w["dense_bias"].astype(np.float32)
        self.units = units
        self.start_probs = model.start_probs
        self.reset()

    def reset(self) -> None:
        """Forget everything heard so far."""
        self.h = np.zeros(self.units, dtype=np.float32)
        self.c = np.zeros(self.units, dtype=np.float32)
        self._z = np.empty(4 * self.units, dtype=np.float32)

    def update(self, z: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The LSTM update from pre-activations `z` (overwritten) and cell state `c`; returns
        the new (h, c). Works on one state or a batch of them (leading axes)."""
        u = self.units
        np.tanh(z, out=z)
        z *= self._gate_mul
        z += self._gate_add
        c = z[..., u : 2 * u] * c + z[..., :u] * z[..., 2 * u : 3 * u]
        return z[..., 3 * u :] * np.tanh(c), c

    def logits(self, h: np.ndarray) -> np.ndarray:
        return h @ self._dense + self._dense_bias

    def step(self, token: int) -> np.ndarray:
        """Feed one token; returns the logits of the next token."""
        z = np.dot(self.h, self._recurrent, out=self._z)
        z += self._input[token]
        self.h, self.c = self.update(z, self.c)
        return self.logits(self.h)

    def feed(self, tokens: Sequence[int]) -> np.ndarray | None:
        """Feed several tokens; returns the logits after the last one (None if none given)."""
        logits = None
        for token in tokens:
            logits = self.step(int(token))
        return logits


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def draw(probs: np.ndarray, top_p: float, rng: np.random.Generator) -> int:
    """Draw a class; with top_p < 1, only from the smallest set holding that much probability."""
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        keep = int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1
        kept = np.zeros_like(probs)
        kept[order[:keep]] = probs[order[:keep]]
        probs = kept
    cumulative = np.cumsum(probs)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"),
                   NUM_CLASSES - 1))


def continue_melody(melody: Melody, logits: np.ndarray | None, count: int, sampling: Sampling,
                    rng: np.random.Generator, trail: list | None = None) -> list[int]:
    """Draw `count` tokens after `logits`, feeding each back so the state carries on.

    With `trail`, the state (h, c) before the first token and after each one is appended to
    it, so a caller can go back to where any prefix of the continuation left the melody.
    """
    out: list[int] = []
    if trail is not None:
        trail.append((melody.h.copy(), melody.c.copy()))
    for _ in range(count):
        if logits is None:  # nothing heard yet: open the way training songs open
            token = draw(melody.start_probs, sampling.top_p, rng)
        else:
            token = draw(softmax(logits, sampling.temperature), sampling.top_p, rng)
        out.append(token)
        logits = melody.step(token)
        if trail is not None:
            trail.append((melody.h.copy(), melody.c.copy()))
    return out


def compose(model: Model, notes: int, primer: Sequence[int] = (),
            sampling: Sampling = Sampling()) -> list[int]:
    """`notes` new tokens after the primer (the primer warms the state up and is not repeated)."""
    sampling.check()
    if notes < 1:
        raise SynthError(f"--notes {notes} is too few: expected at least 1")
    melody = Melody(model)
    rng = np.random.default_rng(sampling.seed)
    return continue_melody(melody, melody.feed(primer), notes, sampling, rng)


def score_songs(model: Model, songs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Log-probability (natural log) of every token 1..n-1 of every song, and whether it was the
    model's top choice; both flattened over songs.

    Songs run side by side as one batch, so a whole dataset takes one pass of matrix products.
    """
    songs = [np.asarray(s, dtype=np.int64) for s in songs if len(s) > 1]
    if not songs:
        return np.zeros(0), np.zeros(0, dtype=bool)
    melody = Melody(model)
    longest = max(len(s) for s in songs)
    batch = len(songs)
    h = np.zeros((batch, melody.units), dtype=np.float32)
    c = np.zeros((batch, melody.units), dtype=np.float32)
    padded = np.zeros((batch, longest), dtype=np.int64)
    for i, s in enumerate(songs):
        padded[i, : len(s)] = s
    out = np.zeros((batch, longest - 1), dtype=np.float64)
    hit = np.zeros((batch, longest - 1), dtype=bool)
    for t in range(longest - 1):
        h, c = melody.update(h @ melody._recurrent + melody._input[padded[:, t]], c)
        logits = melody.logits(h).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        out[:, t] = logp[np.arange(batch), padded[:, t + 1]]
        hit[:, t] = logits.argmax(axis=1) == padded[:, t + 1]
    keep = np.arange(longest - 1)[None, :] < np.array([len(s) - 1 for s in songs])[:, None]
    return out[keep], hit[keep]


def next_token_probs(model: Model, tokens: Sequence[int]) -> np.ndarray:
    """The model's distribution over the token after each prefix: shape (len(tokens), 25)."""
    melody = Melody(model)
    return np.stack([softmax(melody.step(int(t))) for t in tokens])
