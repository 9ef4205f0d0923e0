"""The runtime memory: both PPM models following one song or live session event by event, with
the undo log that takes back what was never heard, on the compiled per-step work where it is
built."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from synth.errors import SynthError
from synth.learn import compiled
from synth.learn.gate import Gate
from synth.learn.ppm import (BASE, HASH, LINK_BASE, LINK_START, SHORT_LENGTH_ORDER, SHORT_ORDER,
                             START, WIDTH, LongTerm, ShortTerm, advance, advance_all,
                             check_orders, class_contexts, entropy, length_contexts)
from synth.music.events import NUM_LENGTHS, Event

UNDO = 2048  # events the memory can take back (live: the part of an answer never heard)


class Memory:
    """The two PPM models following one song (or session): `class_parts` gives the next
    event's class distributions, `length_parts(cls)` its length's once the class is chosen,
    `add` counts the event. The long-term model's orders are its own (fixed when fitted); the
    short-term model's are `order` (classes) and `length_order` (lengths).

    Where the optional C extension is built (synth/learn/_ppmcore.c, `compiled.core`), the
    per-step work runs there on the same tables, the same arithmetic in the same order, the
    position kept as bytes (`_now`); the NumPy code is the reference and the fallback."""

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
        core = compiled.core
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
        slot = ((key * 2 * int(HASH)) & 0xFFFFFFFFFFFFFFFF) >> int(self.short_term.shift)
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
