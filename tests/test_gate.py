"""The mix: the surer model weighs more, generation's fast mix is the mix function's, and a
fitted gate beats entropy weights where a model's entropy says when it is right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synth.learn.gate import Gate, MixSettings, fit_gate, mix
from synth.learn.generate import mixed_probs, softmax
from synth.learn.ppm import entropy


def test_the_mix_weighs_the_surer_model_more_and_sums_to_one():
    sure = np.full(25, 0.001)
    sure[13] = 1 - 0.024
    unsure = np.full(25, 1 / 25)
    for rule in ("arithmetic", "geometric"):
        mixed = mix([unsure, sure], 25, MixSettings(rule=rule))
        assert mixed.sum() == pytest.approx(1)
        assert mixed[13] > 0.5 * (sure[13] + unsure[13])
    even = mix([unsure, sure], 25, MixSettings(bias=0.0))
    assert even == pytest.approx(0.5 * (sure + unsure))
    assert entropy(unsure) == pytest.approx(math.log2(25))


def test_generation_mixes_exactly_as_the_mix_function():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, 25)
    memory = rng.dirichlet(np.ones(25), size=2)
    fast = mixed_probs(logits, memory, entropy(memory), Gate.entropy(1.0, 3))
    assert fast == pytest.approx(mix([softmax(logits), *memory], 25, MixSettings()))
    gate = Gate((0.0, 0.5, -0.3), (1.2, 0.4, 2.0))
    fast = mixed_probs(logits, memory, entropy(memory), gate)
    assert fast == pytest.approx(mix([softmax(logits), *memory], 25, MixSettings(class_gate=gate)))
    assert fast.sum() == pytest.approx(1)


def test_a_fitted_gate_weighs_the_model_that_is_right_where_it_is_right():
    """Two models over 4 symbols, each right half the time and as sure when wrong: entropy
    weights can't tell them apart, a gate reading their entropies can (model 1 is right
    exactly when it is sure)."""
    rng = np.random.default_rng(0)
    n = 4000
    targets = rng.integers(0, 4, n)
    sure = rng.random(n) < 0.5
    first = np.full((n, 4), 0.25)
    first[sure] = 0.02
    first[sure, targets[sure]] = 0.94
    second = rng.dirichlet(np.ones(4) * 0.3, size=n)
    idyom = MixSettings(bias=1.0, length_bias=1.0)  # a head of 4 symbols reads the length's
    before = -np.log2(mix([first, second], 4, idyom)[np.arange(n), targets]).mean()
    gate = fit_gate([first, second], targets, 4, 1.0)
    fitted = MixSettings(length_gate=gate)
    after = -np.log2(mix([first, second], 4, fitted)[np.arange(n), targets])
    assert after.mean() < before - 0.05
    assert len(gate.offsets) == 2 and gate.offsets[0] == 0.0
