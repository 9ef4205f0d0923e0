"""The Keras network against the NumPy one: slow (TensorFlow), so marked; CI still runs it."""

import numpy as np
import pytest

from conftest import random_weights
from synth.music.events import Event

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("length", [2, 7, 64])
def test_keras_and_numpy_agree_to_1e_5_on_both_outputs(length):
    from synth.learn.scores import next_event_probs
    from synth.learn.network import build_keras_model, set_keras_weights
    from synth.learn.model import Model

    weights = random_weights(units=256, seed=2, scale=0.1)
    net = build_keras_model(units=256)
    set_keras_weights(net, weights)
    rng = np.random.default_rng(length)
    classes, lengths = rng.integers(0, 25, length), rng.integers(0, 32, length)
    events = [Event(int(c), int(q) + 1) for c, q in zip(classes, lengths)]
    steps = np.stack([classes, lengths, np.append(classes[1:], 0)], axis=-1)[None]
    out = net.predict(steps, verbose=0)[0]
    class_probs, length_probs = next_event_probs(Model(weights), events)
    assert np.abs(out[:, :25] - class_probs).max() < 1e-5
    assert np.abs(out[:-1, 25:] - length_probs).max() < 1e-5
