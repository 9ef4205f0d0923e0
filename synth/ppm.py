"""The in-song memory: PPM models of classes and lengths (prediction by partial match), NumPy
only, and the one function that mixes them with the LSTM (SPEC section 5).

Two models predict each next event, as in the IDyOM line of research (Pearce):
- the long-term model, fitted on the training songs;
- the short-term model, built from the events so far in the song being composed or scored
  (or, in `synth live`, the whole session), so a melody's own motifs and rhythms come back.
Both are PPM-C, interpolated, with contexts of up to ORDER events: the class model reads the
classes before the event, the length model the lengths before it (not the class of the event
itself, which is drawn in the same step: the LSTM's length head brings that in). Their
distributions, and the LSTM's, are mixed by entropy weights (`mix`).

Speed (SPEC section 7, a generation step under 30 µs): a context is an integer key, the
events it holds as base-64 digits, newest lowest, so all ORDER + 1 keys of the next context
come from the last ones in one array operation. The long-term model is a sorted array of keys
with the interpolated distribution of each precomputed (one search finds the longest context
seen); the short-term model is a fixed table of counts indexed by a hash of the key (a
collision merges two contexts' counts: rare, and harmless to a distribution); everything is
done for classes and lengths side by side, padded to 32 symbols. Even so a step is dozens of
small NumPy calls, so where the optional C extension synth._ppmcore is built, `Memory` hands
its per-step work to it (on these same arrays; the NumPy code stays the reference and the
fallback, and a test holds the two together). SYNTH_NO_C=1 runs NumPy alone.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth.errors import SynthError
from synth.events import NUM_LENGTHS, Event
from synth.notes import NUM_CLASSES

ORDER = 8  # longest context, in events
LONG_ORDER = 4  # the defaults, chosen on the benchmark's validation slice (see the README)
LONG_LENGTH_ORDER = 6
SHORT_ORDER = 8
WIDTH = NUM_LENGTHS  # both models' distributions, padded to the larger alphabet
SIZES = (NUM_CLASSES, NUM_LENGTHS)  # symbols of the class stream and of the length stream
BASE = 64  # a key's digit: token + 1 (1..63)
START = BASE - 2  # the token before a song's first event
UNDO = 2048  # events the memory can take back (live: the part of an answer never heard)
STM_BITS = 15  # short-term table: 2**15 slots per model (flat memory, however long a session)
_HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing
_TINY = 1e-300
_ALPHABET = np.zeros((2, WIDTH), dtype=bool)
_ALPHABET[0, :NUM_CLASSES] = True
_ALPHABET[1, :] = True
UNIFORM = _ALPHABET / np.array(SIZES, dtype=np.float64)[:, None]  # (2, 32): the order -1 model


def _load_core():
    """The compiled per-step work (synth/_ppmcore.c), or None: not built, or SYNTH_NO_C set
    (read once, at import) to run the NumPy code alone. No warning: synth is only slower."""
    if os.environ.get("SYNTH_NO_C", "") not in ("", "0"):
        return None
    try:
        from synth import _ppmcore
    except ImportError:
        return None
    return _ppmcore


core = _load_core()


def start_keys(order: int = ORDER) -> np.ndarray:
    """Keys of the contexts before a song's first event, for both streams: (2, order + 1)."""
    keys = np.zeros(order + 1, dtype=np.int64)
    for k in range(1, order + 1):
        keys[k] = keys[k - 1] * BASE + START + 1
    return np.stack([keys, keys])


def _tag(keys: np.ndarray) -> np.ndarray:
    """Keys of both streams in one key space: the stream in the lowest bit."""
    return keys * 2 + np.arange(2)[:, None]


def song_keys(events: Sequence[Event], order: int = ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Tagged context keys before every event (n, 2, order + 1) and the tokens (n, 2)."""
    tokens = np.array([(e.cls, e.quarters - 1) for e in events], dtype=np.int64).reshape(-1, 2)
    keys = np.empty((len(tokens), 2, order + 1), dtype=np.int64)
    current = start_keys(order)
    for t in range(len(tokens)):
        keys[t] = current
        current = advance(current, tokens[t])
    return _tag(keys), tokens


def advance(keys: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """The context keys after one more event (tokens: its class and length class)."""
    out = np.empty_like(keys)
    out[:, 0] = 0
    np.multiply(keys[:, :-1], BASE, out=out[:, 1:])
    out[:, 1:] += tokens[:, None] + 1
    return out


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
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(probs > 0, np.log2(np.where(probs > 0, probs, 1.0)), 0.0)
    return -(probs * logs).sum(axis=-1)


@dataclass
class LongTerm:
    """The long-term PPM: every context of the training songs, sorted by tagged key, with its
    interpolated distribution (classes in row's first 25 entries, lengths in all 32)."""

    keys: np.ndarray  # (n,) int64, sorted
    probs: np.ndarray  # (n, 32) float64
    entropy: np.ndarray  # (n,) bits
    orders: tuple[int, int] = (LONG_ORDER, LONG_LENGTH_ORDER)  # classes, lengths
    counts: tuple = ()  # (tagged keys, symbols, counts): what was learned, sparse

    @property
    def order(self) -> int:
        """The longest context either stream reads."""
        return max(self.orders)

    def __post_init__(self) -> None:
        # The keys with one past the last, so a search that runs off the end finds no match.
        self._sentinel = np.append(self.keys, -1)

    @classmethod
    def fit(cls, songs: Sequence[Sequence[Event]], order: int = LONG_ORDER,
            length_order: int | None = None) -> "LongTerm":
        """Count every (context, next symbol) of the songs, for both streams: classes with
        contexts up to `order` events, lengths up to `length_order` (default `order`)."""
        orders = (order, order if length_order is None else length_order)
        if not all(1 <= k <= ORDER for k in orders):
            raise SynthError(f"PPM order {orders} is out of range: expected 1-{ORDER}")
        top = max(orders)
        used = np.arange(top + 1)[None, :] <= np.array(orders)[:, None]  # (2, top + 1)
        pairs = [np.zeros(0, dtype=np.int64)]
        for song in songs:
            if not len(song):
                continue
            keys, tokens = song_keys(song, top)
            pairs.append((keys * WIDTH + tokens[:, :, None])[:, used].ravel())
        joint, counts = np.unique(np.concatenate(pairs), return_counts=True)
        return cls.from_counts(joint // WIDTH, joint % WIDTH, counts, orders)

    @classmethod
    def from_counts(cls, keys: np.ndarray, symbols: np.ndarray, counts: np.ndarray,
                    orders: tuple[int, int]) -> "LongTerm":
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
        depth = np.zeros(len(nodes), dtype=np.int64)  # events in the context
        bound = np.ones(len(nodes), dtype=np.int64)
        while (context >= bound).any():
            deeper = context >= bound
            depth[deeper] += 1
            bound[deeper] *= BASE
        probs = np.zeros((len(nodes), WIDTH))
        for k in range(0, int(depth.max(initial=0)) + 1):
            at = np.flatnonzero(depth == k)
            if k == 0:
                below = UNIFORM[stream[at]]
            else:
                parent = (context[at] % BASE ** (k - 1)) * 2 + stream[at]
                where = np.searchsorted(nodes, parent)
                below = probs[where]  # a context's suffixes were always seen with it
            probs[at] = table[at] * share[at, None] + escape[at, None] * below
        return cls(nodes, probs, entropy(probs), tuple(orders), (keys, symbols, counts))

    def arrays(self) -> dict[str, np.ndarray]:
        """The plain arrays a model folder stores (never pickled): the sparse counts."""
        keys, symbols, counts = self.counts
        return {"keys": keys, "symbols": symbols.astype(np.int8), "counts": counts.astype(np.int32),
                "orders": np.array(self.orders)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "LongTerm":
        try:
            orders = tuple(int(k) for k in np.atleast_1d(
                arrays["orders"] if "orders" in arrays else arrays["order"]))
            orders = orders * 2 if len(orders) == 1 else orders  # tables of one order
            if len(orders) != 2 or not all(1 <= k <= ORDER for k in orders):
                raise ValueError
            return cls.from_counts(arrays["keys"], arrays["symbols"], arrays["counts"], orders)
        except (KeyError, TypeError, ValueError):
            raise SynthError("the PPM tables are damaged; retrain with `synth train`") from None

    def lookup(self, tagged: np.ndarray) -> np.ndarray:
        """Row of the longest context seen, per stream, given tagged keys (2, order + 1)."""
        where = np.searchsorted(self.keys, tagged)
        found = self._sentinel[where] == tagged
        depth = found.sum(axis=1) - 1  # found contexts are a prefix of the orders
        return where[(0, 1), depth]


class ShortTerm:
    """The short-term PPM: counts of the contexts heard so far, in a fixed hashed table.

    Per slot: the counts of the symbols after the context, and (total, kinds). `slots` gives
    one slot per order and one more, the last row of the table, which is never counted: it
    stands for "no longer context" so the interpolation needs no special case at the top."""

    def __init__(self, bits: int = STM_BITS):
        self.shift = np.uint64(64 - bits)
        self.top = 1 << bits  # the row never counted
        self.table = np.zeros((self.top + 1, WIDTH))
        self.stats = np.zeros((self.top + 1, 2))  # total, kinds

    def reset(self) -> None:
        self.table[:] = 0
        self.stats[:] = 0

    def slots(self, tagged: np.ndarray) -> np.ndarray:
        """Slots of tagged keys (2, k), then the row never counted: (2, k + 1)."""
        out = np.empty((2, tagged.shape[1] + 1), dtype=np.intp)
        hashed = np.multiply(tagged.view(np.uint64), _HASH)
        hashed >>= self.shift
        out[:, :-1] = hashed
        out[:, -1] = self.top
        return out

    def probs(self, slots: np.ndarray) -> np.ndarray:
        """Interpolated distributions (2, 32) of the contexts in `slots` (see `slots`)."""
        stats = self.stats[slots]
        # PPM-C: a context's counts weigh 1 / (total + kinds), its escape kinds / (total +
        # kinds); an unseen context (and the top row) escapes entirely (TINY / TINY).
        denominator = stats.sum(axis=2)
        denominator += _TINY
        escape = stats[:, :, 1] + _TINY
        escape /= denominator
        # Weight of order k: the escapes of every longer order; of the order -1 model: all.
        below = np.cumprod(escape[:, ::-1], axis=1)[:, ::-1]
        weights = below[:, 1:] / denominator[:, :-1]
        probs = np.matmul(weights[:, None, :], self.table[slots[:, :-1]])[:, 0]
        probs += below[:, :1] * UNIFORM
        return probs

    def add(self, slots: np.ndarray, tokens: np.ndarray, step: int = 1) -> None:
        """Count one event (its class and length class) after the contexts in `slots`; a step
        of -1 takes it back."""
        counted = slots[:, :-1]
        cells = (counted, tokens[:, None])
        before = self.table[cells]
        self.table[cells] = before + step
        self.stats[counted, 0] += step
        self.stats[counted, 1] += (before == 0) if step > 0 else -1.0 * (before == 1)


# --- the mix -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixSettings:
    """How the models are mixed: IDyOM's entropy weights, w = (H / H_max) ** -bias (a model
    sure of itself weighs more), over probabilities ("arithmetic") or log probabilities
    ("geometric"); one bias for classes, one for lengths."""

    bias: float = 1.0
    length_bias: float = 0.25
    rule: str = "arithmetic"

    def check(self) -> "MixSettings":
        if self.rule not in ("arithmetic", "geometric") or not 0 <= self.bias <= 16 or \
                not 0 <= self.length_bias <= 16:
            raise SynthError(f"memory mix {self.rule!r} with biases {self.bias:g}, "
                             f"{self.length_bias:g} is not one synth knows: expected "
                             "arithmetic or geometric, biases 0-16")
        return self

    def bias_for(self, size: int) -> float:
        return self.bias if size == NUM_CLASSES else self.length_bias


def entropy_weights(entropies: np.ndarray, size: int, bias: float) -> np.ndarray:
    """IDyOM's weights of models whose distributions over `size` symbols have these entropies
    (bits; models on the first axis), normalised to sum to 1."""
    weights = np.maximum(np.asarray(entropies) / math.log2(size), 1e-6) ** -bias
    return weights / weights.sum(axis=0, keepdims=True)


def mix(parts: Sequence[np.ndarray], size: int, settings: MixSettings = MixSettings()
        ) -> np.ndarray:
    """The entropy-weighted mix of distributions over `size` symbols (any leading axes).
    Every caller mixes through this one function (generation inlines its arithmetic case for
    speed, and a test holds the two together)."""
    probs = np.stack([np.asarray(p, dtype=np.float64)[..., :size] for p in parts])
    weights = entropy_weights(entropy(probs), size, settings.bias_for(size))
    if settings.rule == "arithmetic":
        return (weights[..., None] * probs).sum(axis=0)
    logs = (weights[..., None] * np.log(np.maximum(probs, 1e-300))).sum(axis=0)
    logs -= logs.max(axis=-1, keepdims=True)
    out = np.exp(logs)
    return out / out.sum(axis=-1, keepdims=True)


def manifest_entry(long_term: LongTerm | None, settings: MixSettings = MixSettings(),
                   short_order: int = SHORT_ORDER, enabled: bool = True) -> dict:
    """What a model's manifest says about its memory (the tables' file is added on saving);
    `enabled`: whether composing uses it unless told otherwise."""
    return {"enabled": enabled, "kind": "PPM-C, interpolated; long-term (training songs) and "
            "short-term (the song so far) mixed with the LSTM by entropy weights",
            "long_orders": None if long_term is None else list(long_term.orders),
            "short_order": short_order, "rule": settings.rule, "bias": settings.bias,
            "length_bias": settings.length_bias}


class Memory:
    """The two PPM models following one song (or session): call `probs` for the next event's
    class and length distributions, `add` once the event is known. The long-term model's order
    is its own (fixed when fitted); the short-term model's is `order`."""

    def __init__(self, long_term: LongTerm | None, order: int = SHORT_ORDER):
        if not 1 <= order <= ORDER:
            raise SynthError(f"PPM order {order} is out of range: expected 1-{ORDER}")
        self.long_term = long_term
        self.short_term = ShortTerm()
        self.order = order
        self._long_orders = (long_term.order if long_term else 0) + 1
        models = 1 + (long_term is not None)
        self._parts = np.zeros((models, 2, WIDTH))
        self._entropies = np.zeros((models, 2))
        self._logs = np.zeros((2, WIDTH))
        self._core = self._compiled()
        self.reset()

    def _compiled(self):
        """The C side of this memory (`core.Tables`, holding the same arrays), or None."""
        if core is None:
            return None
        long = self.long_term
        try:
            return core.Tables(*((long.keys, long.probs, long.entropy) if long else (None,) * 3),
                               self._long_orders, self.short_term.table, self.short_term.stats,
                               self.short_term.top.bit_length() - 1, self.order)
        except (TypeError, ValueError, BufferError):  # tables it cannot take: NumPy does them
            return None

    def reset(self) -> None:
        """A new song: the short-term model forgets, the context starts over."""
        self.short_term.reset()
        self._undo: deque = deque(maxlen=UNDO)
        self._added = 0  # events added before those `_undo` holds
        self.restart()

    def restart(self) -> None:
        """A new song in the same session: the context starts over, the counts stay."""
        self._follow(_tag(start_keys()))

    def _follow(self, tagged: np.ndarray) -> None:
        self._tagged = tagged
        self._slots = self.short_term.slots(tagged[:, : self.order + 1])

    def probs(self) -> tuple[np.ndarray | None, np.ndarray]:
        """(long-term, short-term) distributions of the next event, each (2, 32): row 0 the
        class (first 25 entries), row 1 the length class."""
        long = None
        if self.long_term is not None:
            long = self.long_term.probs[
                self.long_term.lookup(self._tagged[:, : self._long_orders])]
        return long, self.short_term.probs(self._slots)

    def parts(self) -> tuple[np.ndarray, np.ndarray]:
        """The same distributions stacked (models, 2, 32), and their entropies in bits
        (models, 2): the long-term model first, if there is one. Buffers the next call
        overwrites (generation reads them at once)."""
        probs, entropies = self._parts, self._entropies
        if self._core is not None:
            self._core.parts(self._tagged, self._slots, probs, entropies)
            return probs, entropies
        probs[-1] = short = self.short_term.probs(self._slots)
        np.log2(short + _TINY, out=self._logs)
        self._logs *= short
        np.sum(self._logs, axis=1, out=entropies[-1])
        entropies[-1] *= -1.0
        if self.long_term is not None:
            rows = self.long_term.lookup(self._tagged[:, : self._long_orders])
            np.take(self.long_term.probs, rows, axis=0, out=probs[0])
            np.take(self.long_term.entropy, rows, out=entropies[0])
        return probs, entropies

    def add(self, cls: int, length_index: int) -> None:
        if len(self._undo) == UNDO:
            self._added += 1
        self._undo.append((self._slots, (cls, length_index), self._tagged))
        if self._core is not None:
            tagged, slots = np.empty_like(self._tagged), np.empty_like(self._slots)
            self._core.add(cls, length_index, self._slots, self._tagged, slots, tagged)
            self._tagged, self._slots = tagged, slots
            return
        tokens = np.array([cls, length_index], dtype=np.int64)
        self.short_term.add(self._slots, tokens)
        # The tagged keys after the event: key * 64 + token + 1 in each stream (see `_tag`).
        tagged = np.empty_like(self._tagged)
        np.multiply(self._tagged[:, :-1], BASE, out=tagged[:, 1:])
        tagged[:, 1:] += np.array([[2 * cls + 2], [2 * length_index + 2 - (BASE - 1)]])
        tagged[:, 0] = (0, 1)
        self._follow(tagged)

    def state(self) -> tuple:
        """Where the memory is, for `restore` (within the last UNDO events)."""
        return self._tagged, self._added + len(self._undo)

    def restore(self, saved: tuple) -> None:
        tagged, added = saved
        while self._added + len(self._undo) > added and self._undo:
            slots, (cls, length_index), _ = self._undo.pop()
            if self._core is not None:
                self._core.count(cls, length_index, slots, -1)
            else:
                self.short_term.add(slots, np.array([cls, length_index]), -1)
        self._follow(tagged)


def song_probs(memory: Memory, song: Sequence[Event]) -> tuple[np.ndarray | None, np.ndarray]:
    """The memory's distributions before every event of a song (n, 2, 32) each, the short-term
    model starting empty."""
    memory.reset()
    if memory._core is not None:  # the compiled parts: the same numbers, a call per event
        parts = np.empty((len(song), *memory._parts.shape))
        for t, event in enumerate(song):
            parts[t] = memory.parts()[0]
            memory.add(event.cls, event.quarters - 1)
        return (None if memory.long_term is None else parts[:, 0]), parts[:, -1]
    longs, shorts = [], []
    for event in song:
        long, short = memory.probs()
        longs.append(long)
        shorts.append(short)
        memory.add(event.cls, event.quarters - 1)
    return (None if memory.long_term is None else np.array(longs)), np.array(shorts)
