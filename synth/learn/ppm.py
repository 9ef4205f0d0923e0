"""The in-song memory: PPM models of classes and lengths (prediction by partial match), NumPy
only, and the one function that mixes them with the LSTM (SPEC section 5).

Two models predict each next event, as in the IDyOM line of research (Pearce):
- the long-term model, fitted on the training songs;
- the short-term model, built from the events so far in the song being composed or scored
  (or, in `synth live`, the whole session), so a melody's own motifs and rhythms come back.
Both are PPM-C, interpolated. The class model reads the classes before the event (contexts of
up to ORDER events). The length model reads the event's own class and the events before it,
class and length ("linked", as IDyOM links viewpoints): the class is drawn first, so its
length fits it, a long final tonic, a short passing note (up to LINK_ORDER events). Models
saved before linking read the lengths before the event alone, and still load. Their
distributions, and the LSTM's, are mixed by weights from their entropies: IDyOM's rule, or
the small gate `synth train` fits on its held-out songs (`Gate`, `fit_gate`).

A context is an integer key, the tokens it holds as digits, newest lowest: base 64 for classes
(and unlinked lengths), base 1024 for linked lengths, whose lowest digit is the event's class
and the others (class, length) pairs. The long-term model is a sorted array of keys with the
interpolated distribution of each precomputed (one search finds the longest context seen);
the short-term model is a fixed table of counts indexed by a hash of the key (a collision
merges two contexts' counts: rare, and harmless to a distribution). Both streams share the
tables, the stream in a key's lowest bit, distributions padded to 32 symbols.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth.errors import SynthError
from synth.music.events import NUM_LENGTHS, Event
from synth.music.notes import NUM_CLASSES

ORDER = 8  # longest class context (and unlinked length context), in events
LINK_ORDER = 4  # longest linked length context: the class and 4 events (a key of 51 bits)
LONG_ORDER = 4  # the defaults, chosen on the benchmark's validation slice (see the README)
LONG_LENGTH_ORDER = 3
SHORT_ORDER = 8
SHORT_LENGTH_ORDER = 4
UNLINKED_LENGTH_ORDER = 6  # the long-term default of unlinked lengths (models from before)
WIDTH = NUM_LENGTHS  # both models' distributions, padded to the larger alphabet
SIZES = (NUM_CLASSES, NUM_LENGTHS)  # symbols of the class stream and of the length stream
BASE = 64  # a class key's digit: token + 1 (1..63)
START = BASE - 2  # the token before a song's first event
LINK_BASE = 1024  # a linked key's digit: class * 32 + length class + 1 (1..800), or class + 1
LINK_START = LINK_BASE - 2
UNDO = 2048  # events the memory can take back (live: the part of an answer never heard)
STM_BITS = 15  # short-term table: 2**15 slots (flat memory, however long a session)
_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing
_TINY = 1e-300
_ALPHABET = np.zeros((2, WIDTH), dtype=bool)
_ALPHABET[0, :NUM_CLASSES] = True
_ALPHABET[1, :] = True
UNIFORM = _ALPHABET / np.array(SIZES, dtype=np.float64)[:, None]  # (2, 32): the order -1 model


def _load_core():
    """The compiled per-step work (synth/learn/_ppmcore.c), or None: not built, or SYNTH_NO_C set
    (read once, at import) to run the NumPy code alone. No warning: synth is only slower."""
    if os.environ.get("SYNTH_NO_C", "") not in ("", "0"):
        return None
    try:
        from synth.learn import _ppmcore
    except ImportError:
        return None
    return _ppmcore


core = _load_core()


def check_orders(orders: Sequence[int], link: bool) -> tuple[int, int]:
    """(class order, length order), checked: classes 1-8 events, linked lengths 0-4 events
    after the class, unlinked lengths 1-8."""
    orders = tuple(int(k) for k in orders)
    top, bottom = (LINK_ORDER, 0) if link else (ORDER, 1)
    if len(orders) != 2 or not 1 <= orders[0] <= ORDER or not bottom <= orders[1] <= top:
        raise SynthError(f"PPM orders {orders} are out of range: expected classes 1-{ORDER}, "
                         f"lengths {0 if link else 1}-{top}")
    return orders


def history(tokens: np.ndarray, base: int, start: int, order: int) -> np.ndarray:
    """Untagged keys of the 0..order events before each of `tokens` (n, order + 1): key k holds
    the k newest tokens, newest lowest, the song padded before its start with `start`."""
    n = len(tokens)
    padded = np.concatenate([np.full(order, start + 1, dtype=np.int64),
                             np.asarray(tokens, dtype=np.int64) + 1])
    keys = np.zeros((n, order + 1), dtype=np.int64)
    for k in range(1, order + 1):
        keys[:, k] = keys[:, k - 1] + padded[order - k: order - k + n] * base ** (k - 1)
    return keys


def advance(keys: np.ndarray, token: int, base: int) -> np.ndarray:
    """History keys (see `history`) after one more token."""
    out = np.empty_like(keys)
    out[0] = 0
    np.multiply(keys[:-1], base, out=out[1:])
    out[1:] += token + 1
    return out


def advance_all(order: int, base: int, start: int) -> np.ndarray:
    """History keys before a song's first event."""
    keys = np.zeros(order + 1, dtype=np.int64)
    for k in range(1, order + 1):
        keys[k] = keys[k - 1] * base + start + 1
    return keys


def class_contexts(hist: np.ndarray) -> np.ndarray:
    """Tagged class contexts (stream 0) from class history keys (any leading axes)."""
    return hist * 2


def length_contexts(hist: np.ndarray, classes, link: bool) -> np.ndarray:
    """Tagged length contexts (stream 1): unlinked, the length history's keys; linked, the
    empty context, then the event's class (`classes`, one per row of `hist`) before each key
    of the (class, length) history, so order k + 1 is the class and k events."""
    if not link:
        return hist * 2 + 1
    linked = hist * LINK_BASE + (np.asarray(classes, dtype=np.int64)[..., None] + 1)
    out = np.zeros((*hist.shape[:-1], hist.shape[-1] + 1), dtype=np.int64)
    out[..., 1:] = linked
    return out * 2 + 1


def song_contexts(events: Sequence[Event], orders: tuple[int, int], link: bool
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tagged contexts before every event: classes (n, orders[0] + 1), lengths (n, orders[1]
    + 2 linked, + 1 not), and the tokens (n, 2): class, length class."""
    tokens = np.array([(e.cls, e.quarters - 1) for e in events], dtype=np.int64).reshape(-1, 2)
    classes = class_contexts(history(tokens[:, 0], BASE, START, orders[0]))
    if link:
        joint = tokens[:, 0] * NUM_LENGTHS + tokens[:, 1]
        lengths = length_contexts(history(joint, LINK_BASE, LINK_START, orders[1]),
                                  tokens[:, 0], True)
    else:
        lengths = length_contexts(history(tokens[:, 1], BASE, START, orders[1]), None, False)
    return classes, lengths, tokens


def _interpolate(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PPM-C's weights of one context's counts: (own share per count, escape to the shorter
    context). An unseen context escapes entirely."""
    total = counts.sum(axis=-1)
    kinds = np.count_nonzero(counts, axis=-1)
    denominator = total + kinds
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(denominator > 0, 1.0 / denominator, 0.0)
        escape = np.where(denominator > 0, kinds / denominator, 1.0)
    return share, escape


def entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy in bits of distributions along the last axis."""
    logs = np.zeros(np.shape(probs))
    np.log2(probs, out=logs, where=probs > 0)  # 0 log 0 = 0
    return -(probs * logs).sum(axis=-1)


@dataclass
class LongTerm:
    """The long-term PPM: every context of the training songs, sorted by tagged key, with its
    interpolated distribution (classes in a row's first 25 entries, lengths in all 32)."""

    keys: np.ndarray  # (n,) int64, sorted
    probs: np.ndarray  # (n, 32) float64
    entropy: np.ndarray  # (n,) bits
    orders: tuple[int, int] = (LONG_ORDER, LONG_LENGTH_ORDER)  # classes, lengths (events)
    link: bool = True  # lengths read the event's class and the events before (see module doc)
    counts: tuple = ()  # (tagged keys, symbols, counts): what was learned, sparse

    def __post_init__(self) -> None:
        # The keys with one past the last, so a search that runs off the end finds no match.
        self._sentinel = np.append(self.keys, -1)

    @property
    def widths(self) -> tuple[int, int]:
        """Keys of each stream's contexts, the empty one included."""
        return self.orders[0] + 1, self.orders[1] + 1 + self.link

    @classmethod
    def fit(cls, songs: Sequence[Sequence[Event]], order: int = LONG_ORDER,
            length_order: int | None = None, link: bool = True) -> "LongTerm":
        """Count every (context, next symbol) of the songs, for both streams: classes with
        contexts up to `order` events, lengths up to `length_order` events (linked: after the
        event's class)."""
        if length_order is None:
            length_order = LONG_LENGTH_ORDER if link else order
        orders = check_orders((order, length_order), link)
        pairs = [np.zeros(0, dtype=np.int64)]
        for song in songs:
            if not len(song):
                continue
            classes, lengths, tokens = song_contexts(song, orders, link)
            pairs.append((classes * WIDTH + tokens[:, :1]).ravel())
            pairs.append((lengths * WIDTH + tokens[:, 1:]).ravel())
        joint, counts = np.unique(np.concatenate(pairs), return_counts=True)
        return cls.from_counts(joint // WIDTH, joint % WIDTH, counts, orders, link)

    @classmethod
    def from_counts(cls, keys: np.ndarray, symbols: np.ndarray, counts: np.ndarray,
                    orders: tuple[int, int], link: bool = True) -> "LongTerm":
        """Rebuild from sparse counts (what a model folder stores)."""
        keys = np.asarray(keys, dtype=np.int64)
        symbols = np.asarray(symbols, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.float64)
        if not (keys.shape == symbols.shape == counts.shape) or keys.ndim != 1 or \
                (keys < 0).any() or (symbols < 0).any() or (symbols >= WIDTH).any() or \
                (counts <= 0).any() or not np.isfinite(counts).all():
            raise SynthError("the PPM tables are damaged; retrain with `synth train`")
        nodes, index = np.unique(keys, return_inverse=True)
        table = np.zeros((len(nodes), WIDTH))
        np.add.at(table, (index, symbols), counts)
        share, escape = _interpolate(table)
        stream = nodes & 1
        context = nodes >> 1
        base = np.where(stream & link, LINK_BASE, BASE).astype(np.int64)
        depth = np.zeros(len(nodes), dtype=np.int64)  # digits in the context
        bound = np.ones(len(nodes), dtype=np.int64)
        while (context >= bound).any():
            deeper = context >= bound
            depth[deeper] += 1
            bound[deeper] *= base[deeper]
        probs = np.zeros((len(nodes), WIDTH))
        for k in range(0, int(depth.max(initial=0)) + 1):
            at = np.flatnonzero(depth == k)
            if k == 0:
                below = UNIFORM[stream[at]]
            else:
                parent = (context[at] % base[at] ** (k - 1)) * 2 + stream[at]
                where = np.searchsorted(nodes, parent)
                if (where >= len(nodes)).any() or (nodes[np.minimum(where, len(nodes) - 1)]
                                                    != parent).any():
                    raise SynthError("the PPM tables are damaged; retrain with `synth train`")
                below = probs[where]  # a context's suffixes were always seen with it
            probs[at] = table[at] * share[at, None] + escape[at, None] * below
        return cls(nodes, probs, entropy(probs), tuple(orders), bool(link), (keys, symbols, counts))

    def arrays(self) -> dict[str, np.ndarray]:
        """The plain arrays a model folder stores (never pickled): the sparse counts."""
        keys, symbols, counts = self.counts
        return {"keys": keys, "symbols": symbols.astype(np.int8), "counts": counts.astype(np.int32),
                "orders": np.array(self.orders), "link": np.array(self.link)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "LongTerm":
        try:
            orders = tuple(int(k) for k in np.atleast_1d(
                arrays["orders"] if "orders" in arrays else arrays["order"]))
            orders = orders * 2 if len(orders) == 1 else orders  # tables of one order
            link = bool(arrays["link"]) if "link" in arrays else False  # tables from before
            check_orders(orders, link)
            return cls.from_counts(arrays["keys"], arrays["symbols"], arrays["counts"], orders,
                                   link)
        except (KeyError, TypeError, ValueError, SynthError):
            raise SynthError("the PPM tables are damaged; retrain with `synth train`") from None

    def lookup(self, tagged: np.ndarray) -> int:
        """Row of the longest context seen among tagged keys of one stream, shortest first."""
        where = np.searchsorted(self.keys, tagged)
        found = self._sentinel[where] == tagged
        return int(where[found.sum() - 1])  # found contexts are a prefix of the orders


class ShortTerm:
    """The short-term PPM: counts of the contexts heard so far, in a fixed hashed table.

    Per slot: the counts of the symbols after the context, and (total, kinds). `slots` gives
    one slot per context and one more, the last row of the table, which is never counted: it
    stands for "no longer context" so the interpolation needs no special case at the top."""

    def __init__(self, bits: int = STM_BITS):
        self.shift = np.uint64(64 - bits)
        self.top = 1 << bits  # the row never counted
        self.table = np.zeros((self.top + 1, WIDTH))
        self.stats = np.zeros((self.top + 1, 2))  # total, kinds
        self.used = False  # whether anything was counted since the tables were last zeroed

    def reset(self) -> None:
        if self.used:  # zeroing 8 MB costs milliseconds: skip it for tables never counted in
            self.table[:] = 0
            self.stats[:] = 0
            self.used = False

    def slots(self, tagged: np.ndarray) -> np.ndarray:
        """Slots of one stream's tagged keys (k,), then the row never counted: (k + 1,)."""
        out = np.empty(len(tagged) + 1, dtype=np.intp)
        hashed = np.multiply(tagged.view(np.uint64), _HASH)
        hashed >>= self.shift
        out[:-1] = hashed
        out[-1] = self.top
        return out

    def probs(self, slots: np.ndarray, stream: int) -> np.ndarray:
        """Interpolated distribution (32,) of the contexts in `slots` (see `slots`)."""
        stats = self.stats[slots]
        # PPM-C: a context's counts weigh 1 / (total + kinds), its escape kinds / (total +
        # kinds); an unseen context (and the top row) escapes entirely (TINY / TINY).
        denominator = stats.sum(axis=1)
        denominator += _TINY
        escape = stats[:, 1] + _TINY
        escape /= denominator
        # Weight of order k: the escapes of every longer order; of the order -1 model: all.
        below = np.cumprod(escape[::-1])[::-1]
        weights = below[1:] / denominator[:-1]
        probs = weights @ self.table[slots[:-1]]
        probs += below[0] * UNIFORM[stream]
        return probs

    def add(self, slots: np.ndarray, token: int, step: int = 1) -> None:
        """Count one symbol after the contexts in `slots` (a step of -1 takes it back). A slot
        two contexts share is counted once, as one context."""
        counted = np.unique(slots[:-1])
        before = self.table[counted, token]
        self.table[counted, token] = before + step
        self.stats[counted, 0] += step
        self.stats[counted, 1] += (before == 0) if step > 0 else -1.0 * (before == 1)


# --- the mix -------------------------------------------------------------------------------


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


class Memory:
    """The two PPM models following one song (or session): `class_parts` gives the next
    event's class distributions, `length_parts(cls)` its length's once the class is chosen,
    `add` counts the event. The long-term model's orders are its own (fixed when fitted); the
    short-term model's are `order` (classes) and `length_order` (lengths).

    Where the optional C extension is built (synth/learn/_ppmcore.c, `core`), the per-step work runs
    there on the same tables, the same arithmetic in the same order, the position kept as bytes
    (`_now`); the NumPy code is the reference and the fallback."""

    def __init__(self, long_term: LongTerm | None, order: int = SHORT_ORDER,
                 length_order: int | None = None, link: bool | None = None):
        link = long_term.link if long_term is not None else (True if link is None else link)
        if long_term is not None and long_term.link != link:
            raise SynthError("the memory's long-term and short-term models read lengths "
                             "differently (linked and not)")
        if length_order is None:
            length_order = SHORT_LENGTH_ORDER if link else SHORT_ORDER
        self.orders = check_orders((order, length_order), link)
        self.order = order
        self.link = link
        self.long_term = long_term
        self.short_term = ShortTerm()
        long = long_term.orders if long_term is not None else (0, 0)
        self._sizes = (max(order, long[0]) + 1, max(length_order, long[1]) + 1)
        self._bases = (BASE, LINK_BASE if link else BASE)
        self._starts = (START, LINK_START if link else START)
        self._long_widths = long_term.widths if long_term is not None else (0, 0)
        self._short_widths = (order + 1, length_order + 1 + link)
        models = 1 + (long_term is not None)
        self._probs = np.zeros((models, WIDTH))
        self._entropies = np.zeros(models)
        self._core = self._compiled()
        self._gates = None  # the gates the compiled draw was given (`use_gates`)
        self.reset()

    def _compiled(self):
        """The C side of this memory (`core.Tables`, on the same arrays), or None. It keeps the
        position as one bytes object (`_now`: both histories' keys) instead of `_history`."""
        if core is None:
            return None
        long = self.long_term
        try:
            return core.Tables(*((long.keys, long.probs, long.entropy) if long is not None
                                 else (None,) * 3),
                               self.short_term.table, self.short_term.stats,
                               self.short_term.top.bit_length() - 1, self.link, self._sizes,
                               self._long_widths, self._short_widths)
        except (TypeError, ValueError, BufferError):  # tables it cannot take: NumPy does them
            return None

    def context_count(self) -> float:
        """How often the short-term model has heard the current class context at its full
        order (8 classes) before: 2 means this stretch of melody is on its third time round."""
        order = self.orders[0]
        if self._core is not None:
            key = int(np.frombuffer(self._now, dtype=np.int64, count=1, offset=8 * order)[0])
        else:
            key = int(self._history[0][order])
        slot = ((key * 2 * int(_HASH)) & 0xFFFFFFFFFFFFFFFF) >> int(self.short_term.shift)
        return float(self.short_term.stats[slot, 0])

    def use_gates(self, gates: tuple[Gate, Gate]) -> None:
        """The gates (classes, lengths) the compiled draw mixes with (`generate._next_mixed`)."""
        self._core.gates(np.array([[g.offsets, g.biases] for g in gates], dtype=np.float64))
        self._gates = gates

    def reset(self) -> None:
        """A new song: the short-term model forgets, the context starts over."""
        self.short_term.reset()
        self._undo: deque = deque(maxlen=UNDO)
        self._added = 0  # events added before those `_undo` holds
        self.restart()

    def restart(self) -> None:
        """A new song in the same session: the context starts over, the counts stay."""
        history_ = tuple(advance_all(size - 1, base, start) for size, base, start in
                         zip(self._sizes, self._bases, self._starts))
        if self._core is not None:
            self._now = np.concatenate(history_).tobytes()
            return
        self._history = history_
        self._follow()

    def _follow(self) -> None:
        self._class_keys = class_contexts(self._history[0])
        self._class_slots = self.short_term.slots(self._class_keys[: self._short_widths[0]])

    def _length_keys(self, cls: int) -> np.ndarray:
        return length_contexts(self._history[1], cls, self.link)

    def _parts(self, stream: int, keys: np.ndarray, slots: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        probs, entropies = self._probs, self._entropies
        probs[-1] = short = self.short_term.probs(slots, stream)
        entropies[-1] = entropy(short)
        if self.long_term is not None:
            row = self.long_term.lookup(keys[: self._long_widths[stream]])
            probs[0] = self.long_term.probs[row]
            entropies[0] = self.long_term.entropy[row]
        return probs, entropies

    def class_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """The models' distributions of the next event's class (models, 32; the first 25
        entries), the long-term model first if there is one, and their entropies (models,).
        Buffers the next call overwrites (generation reads them at once)."""
        if self._core is not None:
            self._core.parts(self._now, 0, 0, self._probs, self._entropies)
            return self._probs, self._entropies
        return self._parts(0, self._class_keys, self._class_slots)

    def length_parts(self, cls: int) -> tuple[np.ndarray, np.ndarray]:
        """As `class_parts`, for the next event's length given that its class is `cls`."""
        if self._core is not None:
            self._core.parts(self._now, 1, cls, self._probs, self._entropies)
            return self._probs, self._entropies
        keys = self._length_keys(cls)
        return self._parts(1, keys, self.short_term.slots(keys[: self._short_widths[1]]))

    def add(self, cls: int, length_index: int) -> None:
        self.short_term.used = True
        if self._core is not None:  # the counts and the next position in one call
            if len(self._undo) == UNDO:
                self._added += 1
            self._undo.append((self._now, cls, length_index))
            self._now = self._core.add(self._now, cls, length_index)
            return
        length_slots = self.short_term.slots(self._length_keys(cls)[: self._short_widths[1]])
        self.short_term.add(self._class_slots, cls)
        self.short_term.add(length_slots, length_index)
        if len(self._undo) == UNDO:
            self._added += 1
        self._undo.append((self._class_slots, length_slots, cls, length_index, self._history))
        length_token = cls * NUM_LENGTHS + length_index if self.link else length_index
        self._history = (advance(self._history[0], cls, BASE),
                         advance(self._history[1], length_token, self._bases[1]))
        self._follow()

    def state(self) -> tuple:
        """Where the memory is, for `restore` (within the last UNDO events)."""
        position = self._now if self._core is not None else self._history
        return position, self._added + len(self._undo)

    def restore(self, saved: tuple) -> None:
        position, added = saved
        while self._added + len(self._undo) > added and self._undo:
            if self._core is not None:
                self._core.take_back(*self._undo.pop())
                continue
            class_slots, length_slots, cls, length_index, _ = self._undo.pop()
            self.short_term.add(length_slots, length_index, -1)
            self.short_term.add(class_slots, cls, -1)
        if self._core is not None:
            self._now = position
            return
        self._history = position
        self._follow()


def song_probs(memory: Memory, song: Sequence[Event]) -> tuple[np.ndarray | None, np.ndarray]:
    """The memory's distributions before every event of a song, (n, 2, 32) for the long-term
    model (None without one) and for the short-term one: row 0 the class, row 1 the length
    given the event's class. The short-term model starts empty."""
    memory.reset()
    models = 1 + (memory.long_term is not None)
    parts = np.zeros((len(song), models, 2, WIDTH))
    for t, event in enumerate(song):
        parts[t, :, 0] = memory.class_parts()[0]
        parts[t, :, 1] = memory.length_parts(event.cls)[0]
        memory.add(event.cls, event.quarters - 1)
    return (parts[:, 0] if models == 2 else None), parts[:, -1]
