"""Microseconds per generation step, both heads: draw the class, draw its length, feed the event
back in (SPEC section 7: under 30 µs), without and with the PPM memory, with the compiled
per-step work (synth/learn/_ppmcore.c) where it is built and with the NumPy code alone (what
SYNTH_NO_C=1 runs); Keras predict() on the same weights for comparison where TensorFlow is
installed. Every run must give its events, and both paths the same events.

The memories: lengths linked with the class (the design `synth train` writes now: long-term
tables fitted on the shipped dataset, short-term orders 8 and 4), and unlinked (the shipped
model's own tables, written before linking, where it has them); both with a gate that gives
each model its own offset and bias (the cost is the same whatever the values), the short-term
model updated every step.

The model: the shipped one if it is format 2 (class and length heads), else a random format-2
model with 256 units (the shipped size), as the step costs the same whatever the weights.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth.learn import compiled  # noqa: E402
from synth.learn.gate import Gate  # noqa: E402
from synth.learn.generate import Runner, Sampling, continue_melody, memory_for  # noqa: E402
from synth.learn.memory import Memory  # noqa: E402
from synth.learn.model import Model, load_model  # noqa: E402
from synth.learn.ppm import LongTerm  # noqa: E402
from synth.music.songs import load_dataset  # noqa: E402

STEPS = 2000
RUNS = 9


def random_format2(units: int = 256, seed: int = 0) -> Model:
    rng = np.random.default_rng(seed)
    shapes = {"lstm_kernel": (57, 4 * units), "lstm_recurrent_kernel": (units, 4 * units),
              "lstm_bias": (4 * units,), "dense_kernel": (units, 25), "dense_bias": (25,),
              "length_kernel": (units + 25, 32), "length_bias": (32,)}
    return Model({k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in shapes.items()})


shipped = load_model()
if shipped.has_lengths:
    model, which = shipped, f"the shipped model ({shipped.units} units, format 2)"
else:
    model, which = random_format2(), ("a random format-2 model with 256 units (the shipped "
                                      "model is format 1, classes only)")
print(f"model: {which}")


linked = LongTerm.fit([s.events for s in load_dataset(Path(__file__).parent.parent /
                                                      "dataset")])
unlinked = memory_for(shipped, True).long_term if shipped.memory_tables else None
memories = [("no memory", None), ("memory, lengths linked", linked)]
if unlinked is not None and not unlinked.link:
    memories.append(("memory, lengths unlinked (the shipped tables)", unlinked))
# A gate of three models, the LSTM first, each with its own offset and bias.
GATES = (Gate((0.0, -0.4, 0.3), (1.2, 0.6, 0.9)), Gate((0.0, 0.2, -0.5), (0.4, 1.1, 0.7)))
built = compiled.core
print("compiled memory (synth.learn._ppmcore): " + ("built" if built else "not built (or SYNTH_NO_C "
                                              "set): NumPy alone"))


def per_step(sampling: Sampling, long_term: LongTerm | None, memory: bool
             ) -> tuple[list[float], list]:
    runs, events = [], []
    for run in range(RUNS):
        melody = Runner(model, Memory(long_term) if memory else None)
        if memory:
            melody.gates = GATES
        melody.step(13, 3)
        rng = np.random.default_rng(run)
        start = time.perf_counter()
        events.append(continue_melody(melody, STEPS, sampling, rng))
        runs.append((time.perf_counter() - start) / STEPS * 1e6)
        assert len(events[-1]) == STEPS, "a run gave too few events"
    return runs, events


paths = [("C", built), ("numpy", None)] if built else [("numpy", None)]
for name, long_term in memories:
    for label, sampling in [("temperature 1", Sampling()),
                            ("temperature 0.8, top-p 0.9", Sampling(temperature=0.8, top_p=0.9))]:
        drawn = []
        for path, module in paths:
            compiled.core = module  # objects made now take this path (SYNTH_NO_C=1 sets None)
            runs, events = per_step(sampling, long_term, name != "no memory")
            drawn.append(events)
            print(f"{path}, {name}, {label}: {statistics.median(runs):.1f} µs per step (class "
                  f"and length drawn, event fed back), best {min(runs):.1f} µs (median of "
                  f"{RUNS} runs of {STEPS} steps)")
        compiled.core = built
        assert all(events == drawn[0] for events in drawn), "C and NumPy drew different events"

try:
    from synth.learn.network import build_keras_model, set_keras_weights

    net = build_keras_model(units=model.units)
    set_keras_weights(net, model.weights)
    inputs = np.array([[[13, 3, 13]]])  # class, length class, next class
    net.predict(inputs, verbose=0)
    start = time.perf_counter()
    for _ in range(50):
        net.predict(inputs, verbose=0)
    print(f"keras predict(): {(time.perf_counter() - start) / 50 * 1e6:.0f} µs per step "
          "(one event, no state carried, no sampling)")
except Exception as exc:  # TensorFlow not installed
    print(f"keras: skipped ({type(exc).__name__}: {exc})")
