"""Generation in NumPy: the trained LSTM cell, run event by event, and sampling (SPEC section 5).

Never imports TensorFlow. The cell is Keras's LSTM (gates i, f, c, o; sigmoid and tanh) whose
input is the class one-hot beside the length one-hot, so the input product is the sum of two
rows. Sigmoid gates are computed as 0.5 * tanh(x / 2) + 0.5 so one tanh call serves all four
gates. After each event one matrix product gives the class head's logits, the hidden state's
part of the length head's logits and the hidden state's part of the next event's gates; the
length head then adds the row of the class chosen. Draws use the Gumbel-max trick (the argmax
of the logits plus Gumbel noise times the temperature is a draw from the softmax), with the
noise drawn in blocks: a step is one matrix product and a few small array operations. Where the
optional C extension is built (synth/learn/compiled.py), the gates' arithmetic around the
product and, with the memory, the mixed draws run in it: the same arithmetic, fewer calls. A
format-1 model (classes only) reads classes and gives every event one beat. Scoring songs with
the same cell is synth/learn/scores.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from synth.errors import SynthError
from synth.learn import compiled
from synth.learn.gate import Gate, MixSettings, mix
from synth.learn.memory import Memory
from synth.learn.model import Model
from synth.learn.ppm import LongTerm
from synth.music.events import BEAT, NUM_LENGTHS, Event
from synth.music.notes import NUM_CLASSES
from synth.music.songs import MAX_EVENTS

MAX_NOTES = MAX_EVENTS  # --notes above this is a mistake, not a song
MAX_SEED = 2**32 - 1  # the most NumPy's legacy seeding (so Keras's) takes; none takes below 0
HEAD_SIZE = NUM_CLASSES + NUM_LENGTHS  # the heads' logits: classes, then lengths
_HEADS = 64  # HEAD_SIZE padded to 64 floats in `Runner.out`
LOOP_COUNT = 3  # times the short-term model heard a context before it sits out of a draw
LOOP_OFFSET = -60.0  # a gate offset that weighs a model e**-60: out of the mix


@dataclass(frozen=True)
class Sampling:
    """How to draw the next event (its class, then its length) from the model."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    memory: bool | None = None  # mix in the PPM memory; None: as the model's manifest says

    def check(self) -> "Sampling":
        if not (0.05 <= self.temperature <= 5.0):
            raise SynthError(f"--temperature {self.temperature:g} is out of range: "
                             "expected 0.05-5 (lower is safer, higher is wilder)")
        if not (0.0 < self.top_p <= 1.0):
            raise SynthError(f"--top-p {self.top_p:g} is out of range: expected above 0, up to 1")
        check_seed(self.seed)
        return self


def check_seed(seed: int | None) -> int | None:
    """A seed every random generator synth uses takes the same way (None: a fresh one)."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise SynthError(f"--seed {seed} is out of range: expected 0-{MAX_SEED}")
    return seed


def memory_settings(model: Model) -> dict:
    """What the model's manifest says about its memory (empty for models from before it)."""
    memory = model.manifest.get("memory")
    return memory if isinstance(memory, dict) else {}


def memory_for(model: Model, enabled: bool | None = None) -> Memory | None:
    """The PPM memory to run beside the model's LSTM, or None: `enabled` None follows the
    manifest (models from before the memory run without it). A model with no long-term tables
    gets the short-term model alone."""
    settings = memory_settings(model)
    if not (settings.get("enabled", False) if enabled is None else enabled):
        return None
    long_term = LongTerm.from_arrays(model.memory_tables) if model.memory_tables else None
    length_order = settings.get("short_length_order")
    return Memory(long_term, int(settings.get("short_order", 8)),
                  None if length_order is None else int(length_order),
                  bool(settings.get("link", True)) if long_term is None else None)


def mix_settings(model: Model) -> MixSettings:
    settings = memory_settings(model)
    gates = settings.get("gates") or {}
    try:
        fitted = [None if not isinstance(gates.get(head), dict) else
                  Gate(tuple(float(x) for x in gates[head]["offsets"]),
                       tuple(float(x) for x in gates[head]["biases"]))
                  for head in ("classes", "lengths")]
        return MixSettings(bias=float(settings.get("bias", MixSettings.bias)),
                           length_bias=float(settings.get("length_bias", MixSettings.length_bias)),
                           rule=str(settings.get("rule", MixSettings.rule)),
                           class_gate=fitted[0], length_gate=fitted[1]).check()
    except (KeyError, TypeError, ValueError):
        raise SynthError("the model's manifest has a damaged memory entry; retrain with "
                         "`synth train`") from None


class Runner:
    """A running LSTM: feed events, read the next event's distributions; the state carries on.
    With a memory, the PPM models follow the same events and `_next_event` mixes them in."""

    def __init__(self, model: Model, memory: Memory | None = None):
        self.memory = memory
        self.mix = mix_settings(model) if memory is not None else MixSettings()
        models = 2 + (memory is not None and memory.long_term is not None)
        self.gates = (self.mix.gate_for(NUM_CLASSES, models),
                      self.mix.gate_for(NUM_LENGTHS, models))
        # Composing, the short-term model hears what it draws, so it can talk itself into a
        # loop: once a stretch of 8 classes comes round a fourth time, it sits out (see
        # `_next_mixed`), as the LSTM alone never loops.
        self.loop_gates = tuple(Gate(g.offsets[:-1] + (LOOP_OFFSET,), g.biases)
                                for g in self.gates)
        w = model.weights
        units = model.units
        self.units = units
        self.has_lengths = model.has_lengths
        # Halve the sigmoid gates' pre-activations so tanh computes them (see module doc).
        scale = np.full(4 * units, 0.5, dtype=np.float32)
        scale[2 * units : 3 * units] = 1.0
        kernel = w["lstm_kernel"] * scale
        self._class_in = np.ascontiguousarray((kernel[:NUM_CLASSES] + w["lstm_bias"] * scale),
                                              dtype=np.float32)
        # Length rows of the input (zeros for a classes-only model, which never reads them).
        self._length_in = np.ascontiguousarray(kernel[NUM_CLASSES:], dtype=np.float32) \
            if self.has_lengths else np.zeros((NUM_LENGTHS, 4 * units), dtype=np.float32)
        self._gate_mul = scale.copy()  # 0.5 on sigmoid gates, 1 on the cell gate
        self._gate_add = np.where(scale == 0.5, 0.5, 0.0).astype(np.float32)
        if self.has_lengths:
            head = np.concatenate([w["dense_kernel"], w["length_kernel"][:units]], axis=1)
            bias = np.concatenate([w["dense_bias"], w["length_bias"]])
            self.length_by_class = np.ascontiguousarray(w["length_kernel"][units:],
                                                         dtype=np.float32)
        else:
            head = np.concatenate([w["dense_kernel"], np.zeros((units, NUM_LENGTHS))], axis=1)
            bias = np.concatenate([w["dense_bias"], np.full(NUM_LENGTHS, -1e9)])
            bias[NUM_CLASSES + BEAT - 1] = 0.0  # every length one beat
            self.length_by_class = np.zeros((NUM_CLASSES, NUM_LENGTHS), dtype=np.float32)
        # One matrix product per event does all the work (the step's cost is this product):
        # [h, 1] @ fused gives the heads' logits (bias included, via the 1) and h's recurrent
        # share of the next step's gates. Heads take the first _HEADS columns (padded so the
        # recurrent part starts 64-byte aligned); the views below serve batched scoring.
        fused = np.zeros((units + 1, _HEADS + 4 * units), dtype=np.float32)
        fused[:units, :HEAD_SIZE] = head
        fused[units, :HEAD_SIZE] = bias
        fused[:units, _HEADS:] = w["lstm_recurrent_kernel"] * scale
        self._fused = fused
        self.recurrent = fused[:units, _HEADS:]
        self._head = fused[:units, :HEAD_SIZE]
        self._head_bias = fused[units, :HEAD_SIZE].copy()
        self.start_probs = model.start_probs
        self.start_lengths = model.start_lengths if self.has_lengths else \
            np.eye(NUM_LENGTHS)[np.full(NUM_CLASSES, BEAT - 1)]
        # The gates in C (the same float32 arithmetic), where the extension is built.
        core = compiled.core
        self._cell = None if core is None else core.Cell(
            self._class_in, self._length_in, self._gate_mul, self._gate_add, units)
        self.reset()

    def reset(self) -> None:
        """Forget everything heard so far."""
        if self.memory is not None:
            self.memory.reset()
        u = self.units
        self.h = np.zeros(u, dtype=np.float32)
        self.c = np.zeros(u, dtype=np.float32)
        # After a step: the heads' output (see `heads`), then h's recurrent share of the next
        # step's gates, so (h, c, out) is the whole state. None before the first event.
        self.out: np.ndarray | None = None
        z = self._z = np.empty(4 * u, dtype=np.float32)
        self._gates = z[:u], z[u : 2 * u], z[2 * u : 3 * u], z[3 * u :]  # i, f, g, o views

    def update(self, z: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The LSTM update from pre-activations `z` (overwritten) and cell state `c`; returns
        the new (h, c). Works on one state or a batch of them (leading axes)."""
        u = self.units
        np.tanh(z, out=z)
        z *= self._gate_mul
        z += self._gate_add
        c = z[..., u : 2 * u] * c + z[..., :u] * z[..., 2 * u : 3 * u]
        return z[..., 3 * u :] * np.tanh(c), c

    def inputs(self, classes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Input rows (bias included, gates scaled) of events given as class and length-class
        indices (any shape)."""
        return self._class_in[classes] + self._length_in[lengths]

    def heads(self, h: np.ndarray) -> np.ndarray:
        """Class logits and the hidden state's share of the length logits, side by side."""
        return h @ self._head + self._head_bias

    def step(self, cls: int, length_index: int) -> np.ndarray:
        """Feed one event (class, length class); returns `out`, which starts with the heads'
        output (see `heads`)."""
        if self._cell is not None and self.out is not None:  # as below, in fewer calls
            z, hidden = self._z, np.empty(self.units + 1, dtype=np.float32)
            c = np.empty(self.units, dtype=np.float32)
            self._cell.inputs(self.out, cls, length_index, z)
            np.tanh(z, out=z)
            self._cell.gates(z, self.c, c)
            h = hidden[:-1]
            np.tanh(c, out=h)
            h *= self._gates[3]
            hidden[-1] = 1.0
            self.h, self.c = h, c
            self.out = np.dot(hidden, self._fused)
            if self.memory is not None:
                self.memory.add(cls, length_index)
            return self.out
        # The same arithmetic as `update`, spelled out on preallocated views: at this size
        # NumPy's per-call overhead, not the arithmetic, is what costs.
        z = self._z
        if self.out is None:
            np.add(self._class_in[cls], self._length_in[length_index], out=z)
        else:
            np.add(self.out[_HEADS:], self._class_in[cls], out=z)
            z += self._length_in[length_index]
        np.tanh(z, out=z)
        z *= self._gate_mul
        z += self._gate_add
        i, f, g, o = self._gates
        c = f * self.c
        c += i * g
        hidden = np.empty(self.units + 1, dtype=np.float32)
        hidden[-1] = 1.0  # picks the heads' bias row of the fused matrix
        h = hidden[:-1]
        np.multiply(o, np.tanh(c), out=h)
        self.h, self.c = h, c
        self.out = np.dot(hidden, self._fused)
        if self.memory is not None:
            self.memory.add(cls, length_index)
        return self.out

    def feed(self, events: Sequence[Event]) -> None:
        """Hear several events; the next draw continues after the last of them."""
        for event in events:
            self.step(event.cls, event.quarters - 1)

    def class_logits(self) -> np.ndarray:
        return self.out[:NUM_CLASSES]

    def length_logits(self, cls: int) -> np.ndarray:
        """Logits of the length of the next event, given that its class is `cls`."""
        return self.out[NUM_CLASSES:HEAD_SIZE] + self.length_by_class[cls]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def draw(probs: np.ndarray, top_p: float, rng: np.random.Generator) -> int:
    """Draw an index; with top_p < 1, only from the smallest set holding that much probability.
    `probs` need not sum to 1."""
    with np.errstate(divide="ignore"):  # a zero probability is a logit of -inf: never drawn
        logits = np.log(np.asarray(probs, dtype=np.float64))
    return _pick(logits, rng.gumbel(size=len(logits)), top_p, 1.0)


def _pick(logits: np.ndarray, noise: np.ndarray, top_p: float, temperature: float) -> int:
    """A draw from softmax(logits / temperature), given Gumbel noise times the temperature:
    argmax(logits + noise) (the Gumbel-max trick; cheaper than the inverse CDF, which needs a
    maximum, an exponential and a running sum). With top_p < 1, only the smallest set of
    indices holding that much probability can win."""
    if top_p < 1.0:
        probs = softmax(logits, temperature)
        order = np.argsort(-probs, kind="stable")
        kept = order[: int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1]
        return int(kept[(logits[kept] + noise[kept]).argmax()])
    return int((logits + noise).argmax())


def _noise(rng: np.random.Generator, events: int, temperature: float) -> np.ndarray:
    """The randomness of `events` draws, one row per event (class, then length): Gumbel noise
    times the temperature. Drawn in blocks or row by row, the stream is the same."""
    noise = rng.gumbel(size=(events, HEAD_SIZE))
    noise *= temperature
    return noise.astype(np.float32)


def next_event(melody: Runner, sampling: Sampling, rng: np.random.Generator) -> Event:
    """Draw the next event: its class, then its length given that class."""
    return _next_event(melody, sampling, _noise(rng, 1, sampling.temperature)[0])


def _next_event(melody: Runner, sampling: Sampling, noise: np.ndarray) -> Event:
    """The next event, from one row of `_noise`."""
    out, top_p = melody.out, sampling.top_p
    if melody.memory is not None and out is not None:
        return _next_mixed(melody, sampling, noise)
    if out is None:  # nothing heard yet: open the way training songs open (no temperature)
        t = sampling.temperature  # argmax(t * log p + t * gumbel) is a draw from p
        with np.errstate(divide="ignore"):
            cls = _pick(t * np.log(melody.start_probs), noise[:NUM_CLASSES], top_p, t)
            length = _pick(t * np.log(melody.start_lengths[cls]), noise[NUM_CLASSES:], top_p, t)
        return Event(cls, length + 1)
    if top_p < 1.0:
        t = sampling.temperature
        cls = _pick(out[:NUM_CLASSES], noise[:NUM_CLASSES], top_p, t)
        return Event(cls, _pick(melody.length_logits(cls), noise[NUM_CLASSES:], top_p, t) + 1)
    # The fast path: the two argmaxes of `_pick`, inlined.
    cls = int((out[:NUM_CLASSES] + noise[:NUM_CLASSES]).argmax())
    length = (out[NUM_CLASSES:HEAD_SIZE] + melody.length_by_class[cls] + noise[NUM_CLASSES:])
    return Event(cls, int(length.argmax()) + 1)


def _next_mixed(melody: Runner, sampling: Sampling, noise: np.ndarray) -> Event:
    """The next event from the LSTM mixed with the memory (as `mix` mixes): the class,
    then its length, which the memory's length models read with the class."""
    memory, out = melody.memory, melody.out
    gates = melody.loop_gates if memory.context_count() >= LOOP_COUNT else melody.gates
    if sampling.top_p < 1.0 or melody.mix.rule != "arithmetic":
        return _next_mixed_generic(melody, sampling, noise, gates)
    if memory._core is not None:  # the parts and both draws below in one C call
        if memory._gates is not gates:
            memory.use_gates(gates)
        cls, length = memory._core.draw(memory._now, out, melody.length_by_class, noise)
        return Event(cls, length + 1)
    probs, entropies = memory.class_parts()
    cls = _draw_mixed(out[:NUM_CLASSES], probs[:, :NUM_CLASSES], entropies,
                      gates[0], noise[:NUM_CLASSES])
    probs, entropies = memory.length_parts(cls)
    length = _draw_mixed(out[NUM_CLASSES:HEAD_SIZE] + melody.length_by_class[cls], probs,
                         entropies, gates[1], noise[NUM_CLASSES:])
    return Event(cls, length + 1)


_LOG2 = math.log(2)


def mixed_probs(logits: np.ndarray, probs: np.ndarray, entropies: np.ndarray, gate: Gate
                ) -> np.ndarray:
    """`mix`'s arithmetic rule for one step, the LSTM's logits beside the memory's
    distributions (models, size) and entropies, weighed by `gate` (the LSTM first): a handful
    of NumPy calls instead of dozens."""
    size = len(logits)
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max()
    exp = np.exp(logits - top)
    total = float(exp.sum())
    lstm_bits = (math.log(total) - float(exp @ (logits - top)) / total) / _LOG2
    scale = math.log2(size)
    weights = [math.exp(a) * max(h / scale, 1e-6) ** -b for a, b, h in
               zip(gate.offsets, gate.biases, (lstm_bits, *entropies.tolist()))]
    whole = sum(weights)
    mixed = np.dot(np.array(weights[1:]) / whole, probs)
    mixed += exp * (weights[0] / (whole * total))
    return mixed


def _draw_mixed(logits: np.ndarray, probs: np.ndarray, entropies: np.ndarray, gate: Gate,
                noise: np.ndarray) -> int:
    return int((np.log(mixed_probs(logits, probs, entropies, gate)) + noise).argmax())


def _next_mixed_generic(melody: Runner, sampling: Sampling, noise: np.ndarray,
                        gates: tuple[Gate, Gate]) -> Event:
    """The next event from the LSTM mixed with the memory by `mix` (top-p, geometric),
    weighed by `gates` (`Runner.gates`, or `loop_gates` in a loop)."""
    memory = melody.memory
    settings = replace(melody.mix, class_gate=gates[0], length_gate=gates[1])
    t, top_p = sampling.temperature, sampling.top_p
    probs, _ = memory.class_parts()
    parts = [softmax(melody.out[:NUM_CLASSES]), *probs]
    with np.errstate(divide="ignore"):
        cls = _pick(np.log(mix(parts, NUM_CLASSES, settings)), noise[:NUM_CLASSES], top_p, t)
        probs, _ = memory.length_parts(cls)
        parts = [softmax(melody.length_logits(cls)), *probs]
        length = _pick(np.log(mix(parts, NUM_LENGTHS, settings)), noise[NUM_CLASSES:], top_p, t)
    return Event(cls, length + 1)


_NOISE_BLOCK = 256  # events whose noise is drawn at once: few calls, little memory


def continue_melody(melody: Runner, count: int, sampling: Sampling,
                    rng: np.random.Generator) -> list[Event]:
    """Draw `count` events after what the melody has heard, feeding each back in: the same
    as `count` calls of `next_event` and `step`, with the same `rng`."""
    out: list[Event] = []
    step = melody.step
    for begin in range(0, count, _NOISE_BLOCK):
        for noise in _noise(rng, min(_NOISE_BLOCK, count - begin), sampling.temperature):
            event = _next_event(melody, sampling, noise)
            out.append(event)
            step(event.cls, event.quarters - 1)
    return out


def state(melody: Runner) -> tuple:
    """A copy of where the melody is, for `restore`."""
    return (melody.h.copy(), melody.c.copy(), None if melody.out is None else melody.out.copy(),
            None if melody.memory is None else melody.memory.state())


def restore(melody: Runner, saved: tuple) -> None:
    h, c, out, memory = saved
    melody.h, melody.c = h.copy(), c.copy()
    melody.out = None if out is None else out.copy()
    if memory is not None:
        melody.memory.restore(memory)


def check_notes(notes: int) -> int:
    if not 1 <= notes <= MAX_NOTES:
        raise SynthError(f"--notes {notes} is out of range: expected 1-{MAX_NOTES}")
    return notes


def compose(model: Model, notes: int, primer: Sequence[Event] = (),
            sampling: Sampling = Sampling()) -> list[Event]:
    """`notes` new events after the primer (the primer warms the state up and is not repeated).
    A classes-only model gives every event one beat."""
    sampling.check()
    check_notes(notes)
    melody = Runner(model, memory_for(model, sampling.memory))
    melody.feed(primer)
    return continue_melody(melody, notes, sampling, np.random.default_rng(sampling.seed))
