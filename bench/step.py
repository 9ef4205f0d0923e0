"""Microseconds per generation step: the NumPy cell vs Keras predict() on the same weights
(SPEC section 7: under 50 µs)."""

import statistics
import time

import numpy as np

from synth.generate import Melody, Sampling, compose
from synth.modelfile import load_model

model = load_model()
melody = Melody(model)
for _ in range(500):
    melody.step(13)
runs = []
for _ in range(7):
    start = time.perf_counter()
    compose(model, 2000, sampling=Sampling(seed=0))
    runs.append((time.perf_counter() - start) / 2000 * 1e6)
print(f"numpy: {statistics.median(runs):.1f} µs per step with sampling "
      f"(median of 7 runs of 2000 steps)")

try:
    from synth.model import build_keras_model, set_keras_weights

    net = build_keras_model(units=model.units)
    set_keras_weights(net, model.weights)
    tokens = np.array([[13]])
    net.predict(tokens, verbose=0)
    start = time.perf_counter()
    for _ in range(50):
        net.predict(tokens, verbose=0)
    print(f"keras predict(): {(time.perf_counter() - start) / 50 * 1e6:.0f} µs per step "
          "(one token, no state carried)")
except Exception as exc:  # TensorFlow not installed
    print(f"keras: skipped ({exc})")
