"""The PPM models of classes and lengths (prediction by partial match) and the contexts they
read, NumPy only (SPEC section 5).

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
the small gate `synth train` fits on its held-out songs (synth/learn/gate.py); the memory that
runs both models beside a song, and takes events back, is synth/learn/memory.py.

A context is an integer key, the tokens it holds as digits, newest lowest: base 64 for classes
(and unlinked lengths), base 1024 for linked lengths, whose lowest digit is the event's class
and the others (class, length) pairs. The long-term model is a sorted array of keys with the
interpolated distribution of each precomputed (one search finds the longest context seen);
the short-term model is a fixed table of counts indexed by a hash of the key (a collision
merges two contexts' counts: rare, and harmless to a distribution). Both streams share the
tables, the stream in a key's lowest bit, distributions padded to 32 symbols.
"""

from __future__ import annotations

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
STM_BITS = 15  # short-term table: 2**15 slots (flat memory, however long a session)
HASH = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: a tagged key's short-term slot
_TINY = 1e-300
_ALPHABET = np.zeros((2, WIDTH), dtype=bool)
_ALPHABET[0, :NUM_CLASSES] = True
_ALPHABET[1, :] = True
UNIFORM = _ALPHABET / np.array(SIZES, dtype=np.float64)[:, None]  # (2, 32): the order -1 model


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
        # The counts of each (context, symbol), summed (whole numbers: exact in any order).
        table = np.bincount(index * WIDTH + symbols, counts,
                            len(nodes) * WIDTH).reshape(len(nodes), WIDTH)
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
            mine = table[at]
            mine *= share[at, None]
            below *= escape[at, None]  # `below` is a copy: UNIFORM and probs are untouched
            mine += below
            probs[at] = mine
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
        hashed = np.multiply(tagged.view(np.uint64), HASH)
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
