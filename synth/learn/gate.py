"""How the LSTM and the PPM models are mixed (SPEC section 5): the gate that weighs each model
by its entropy, the one mix function, the gate's fitting on held-out events, and what a model's
manifest says of its memory.

IDyOM's rule weighs a model by w = (H / H_max) ** -bias, a model sure of itself more; the gate
`synth train` fits gives each model its own offset and bias on the same feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth.errors import SynthError
from synth.learn.ppm import SHORT_LENGTH_ORDER, SHORT_ORDER, LongTerm, entropy
from synth.music.notes import NUM_CLASSES


@dataclass(frozen=True)
class Gate:
    """How much each model weighs, from its entropy H (bits) over `size` symbols:
    w = exp(offset) * (H / H_max) ** -bias, normalised over the models (the LSTM first, its
    offset 0). IDyOM's entropy weights are the gate of offsets 0 and one shared bias."""

    offsets: tuple[float, ...]
    biases: tuple[float, ...]

    @classmethod
    def entropy(cls, bias: float, models: int) -> "Gate":
        return cls((0.0,) * models, (float(bias),) * models)

    def weights(self, entropies: np.ndarray, size: int) -> np.ndarray:
        """Normalised weights of models with these entropies (models on the first axis)."""
        shape = (-1,) + (1,) * (np.ndim(entropies) - 1)
        weights = np.exp(np.array(self.offsets).reshape(shape)) * np.maximum(
            np.asarray(entropies) / math.log2(size), 1e-6) ** -np.array(self.biases).reshape(shape)
        return weights / weights.sum(axis=0, keepdims=True)

    def check(self) -> "Gate":
        if len(self.offsets) != len(self.biases) or not self.offsets or \
                not all(math.isfinite(x) and abs(x) <= 64 for x in self.offsets + self.biases):
            raise SynthError(f"memory gate {self} is damaged: expected as many offsets as "
                             "biases, each finite, at most 64")
        return self

    def as_dict(self) -> dict:
        return {"offsets": [round(x, 6) for x in self.offsets],
                "biases": [round(x, 6) for x in self.biases]}


@dataclass(frozen=True)
class MixSettings:
    """How the models are mixed: IDyOM's entropy weights, w = (H / H_max) ** -bias (a model
    sure of itself weighs more), over probabilities ("arithmetic") or log probabilities
    ("geometric"); one bias for classes, one for lengths; or, where fitted (`fit_gate`), a gate
    per head for the LSTM and the two PPM models."""

    bias: float = 1.0
    length_bias: float = 0.5
    rule: str = "arithmetic"
    class_gate: Gate | None = None
    length_gate: Gate | None = None

    def check(self) -> "MixSettings":
        if self.rule not in ("arithmetic", "geometric") or not 0 <= self.bias <= 16 or \
                not 0 <= self.length_bias <= 16:
            raise SynthError(f"memory mix {self.rule!r} with biases {self.bias:g}, "
                             f"{self.length_bias:g} is not one synth knows: expected "
                             "arithmetic or geometric, biases 0-16")
        for gate in (self.class_gate, self.length_gate):
            if gate is not None:
                gate.check()
        return self

    def bias_for(self, size: int) -> float:
        return self.bias if size == NUM_CLASSES else self.length_bias

    def gate_for(self, size: int, models: int) -> Gate:
        """The fitted gate of that head if it is one for this many models, else IDyOM's."""
        gate = self.class_gate if size == NUM_CLASSES else self.length_gate
        if gate is not None and len(gate.offsets) == models:
            return gate
        return Gate.entropy(self.bias_for(size), models)


def mix(parts: Sequence[np.ndarray], size: int, settings: MixSettings = MixSettings()
        ) -> np.ndarray:
    """The weighted mix of distributions over `size` symbols (any leading axes). Every caller
    mixes through this one function (generation inlines its arithmetic case for speed, and a
    test holds the two together)."""
    probs = np.stack([np.asarray(p, dtype=np.float64)[..., :size] for p in parts])
    weights = settings.gate_for(size, len(parts)).weights(entropy(probs), size)
    if settings.rule == "arithmetic":
        return (weights[..., None] * probs).sum(axis=0)
    logs = (weights[..., None] * np.log(np.maximum(probs, 1e-300))).sum(axis=0)
    logs -= logs.max(axis=-1, keepdims=True)
    out = np.exp(logs)
    return out / out.sum(axis=-1, keepdims=True)


def fit_gate(parts: Sequence[np.ndarray], targets: np.ndarray, size: int, bias: float,
             steps: int = 400) -> Gate:
    """The gate (arithmetic rule) that predicts `targets` best: fewest bits, by Adam from
    IDyOM's weights with `bias` (so it does at least as well on these events). `parts`: each
    model's distributions before each event (events, >= size), the LSTM's first."""
    probs = np.stack([np.asarray(p, dtype=np.float64)[:, :size] for p in parts])  # (m, n, size)
    rows = np.arange(len(targets))
    hit = np.maximum(probs[:, rows, targets], 1e-300)  # (m, n): each model's p of the event
    features = -np.log(np.maximum(entropy(probs) / math.log2(size), 1e-6))  # (m, n)
    models = len(parts)
    offsets, biases = np.zeros(models), np.full(models, float(bias))

    def loss_and_grads(offsets, biases):
        logits = offsets[:, None] + biases[:, None] * features
        logits -= logits.max(axis=0)
        weights = np.exp(logits)
        weights /= weights.sum(axis=0)
        p = (weights * hit).sum(axis=0)
        # d(-log p) / d logit_m = w_m (1 - hit_m / p)
        dlogit = weights * (1.0 - hit / p)
        return -np.log2(p).mean(), dlogit.mean(axis=1) / math.log(2), \
            (dlogit * features).mean(axis=1) / math.log(2)

    best = (loss_and_grads(offsets, biases)[0], offsets.copy(), biases.copy())
    moments = np.zeros((2, 2, models))
    rate = 0.05
    for step in range(1, steps + 1):
        loss, grad_a, grad_b = loss_and_grads(offsets, biases)
        if loss < best[0]:
            best = (loss, offsets.copy(), biases.copy())
        grad_a[0] = 0.0  # the LSTM's offset stays 0: only ratios matter
        for i, (value, grad) in enumerate(((offsets, grad_a), (biases, grad_b))):
            moments[i, 0] = 0.9 * moments[i, 0] + 0.1 * grad
            moments[i, 1] = 0.999 * moments[i, 1] + 0.001 * grad ** 2
            value -= rate * (moments[i, 0] / (1 - 0.9 ** step)) / (
                np.sqrt(moments[i, 1] / (1 - 0.999 ** step)) + 1e-8)
        np.clip(offsets, -16, 16, out=offsets)
        np.clip(biases, -16, 16, out=biases)
    loss = loss_and_grads(offsets, biases)[0]
    if loss < best[0]:
        best = (loss, offsets, biases)
    return Gate(tuple(float(x) for x in best[1]), tuple(float(x) for x in best[2]))


def manifest_entry(long_term: LongTerm | None, settings: MixSettings = MixSettings(),
                   short_orders: tuple[int, int] = (SHORT_ORDER, SHORT_LENGTH_ORDER),
                   enabled: bool = True) -> dict:
    """What a model's manifest says about its memory (the tables' file is added on saving);
    `enabled`: whether composing uses it unless told otherwise."""
    gates = {"classes": settings.class_gate, "lengths": settings.length_gate}
    return {"enabled": enabled,
            "kind": "PPM-C, interpolated; long-term (training songs) and short-term (the song so "
                    "far); lengths linked with the event's class; mixed with the LSTM by "
                    + ("a gate fitted on the held-out songs" if settings.class_gate else
                       "entropy weights"),
            "link": True if long_term is None else long_term.link,
            "long_orders": None if long_term is None else list(long_term.orders),
            "short_order": short_orders[0], "short_length_order": short_orders[1],
            "rule": settings.rule, "bias": settings.bias, "length_bias": settings.length_bias,
            "gates": {k: None if g is None else g.as_dict() for k, g in gates.items()}}
