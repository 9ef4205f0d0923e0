"""The model's side of `synth live`: one running melody for the whole session, drawn ahead and
taken back to what sounded."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synth.music import events as ev
from synth.learn.generate import Runner, Sampling, memory_for, next_event, restore, state
from synth.learn.model import Model


class Responder:
    """The model's side of the conversation: one running melody for the whole session.

    An answer is drawn one event at a time as it plays (`begin`, then `draw`); `heard` takes
    the melody and the random numbers back to where the events that sounded left them, so that
    events drawn ahead and never heard leave no trace.
    """

    def __init__(self, model: Model, sampling: Sampling = Sampling()):
        # The memory's short-term model hears the whole session: the player's motifs return.
        self.melody = Runner(model, memory_for(model, sampling.memory))
        self.sampling = sampling
        self.rng = np.random.default_rng(sampling.seed)
        self._trail: list[tuple] = []  # marks before the answer and after each event drawn

    def mark(self) -> tuple:
        """Where the melody and the random numbers are, for `back`."""
        return state(self.melody), self.rng.bit_generator.state

    def back(self, mark: tuple) -> None:
        """Take the melody and the random numbers back to `mark`."""
        restore(self.melody, mark[0])
        self.rng.bit_generator.state = mark[1]

    def hear(self, events: Sequence[ev.Event]) -> None:
        """Feed played events; the next draw continues after them."""
        self.melody.feed(events)

    def begin(self) -> None:
        """An answer starts here."""
        self._trail = [self.mark()]

    def draw(self, room: int | None = None) -> ev.Event | None:
        """The answer's next event, fed back into the melody; None, and nothing drawn or fed,
        if it is longer than `room` quarter beats."""
        before = self.rng.bit_generator.state if room is not None else None
        event = next_event(self.melody, self.sampling, self.rng)
        if room is not None and event.quarters > room:
            self.rng.bit_generator.state = before
            return None
        self.melody.feed([event])
        self._trail.append(self.mark())
        return event

    def answer(self, phrase: Sequence[ev.Event], count: int) -> list[ev.Event]:
        """Hear `phrase`, then draw `count` events that continue it."""
        self.hear(phrase)
        self.begin()
        return [self.draw() for _ in range(count)]

    def end(self) -> None:
        """The answer is over: let its trail go (now rather than at the next answer's start,
        where the time counts)."""
        self._trail = []

    def heard(self, played: int) -> None:
        """Only the first `played` events of the answer sounded: forget the rest."""
        if self._trail:
            self.back(self._trail[min(played, len(self._trail) - 1)])
