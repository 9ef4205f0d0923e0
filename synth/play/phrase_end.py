"""When the player's phrase ends in `synth live`: the gap, a silence in beats at the player's
tempo, which learns the rests a player leaves inside phrases."""

from __future__ import annotations

from synth.play.exchanges import Exchange
from synth.play.listener import Listener

FIRST_GAP = 0.8  # seconds of silence that end a phrase while no tempo is known yet
GAP_BEATS = 1.5  # beats of silence that end a phrase once the tempo is known
GAP_BEATS_RANGE = (0.5, 8.0)
CLEARLY = 1.3  # a phrase end is a silence this many times the longest rest left inside phrases
MAX_REST_BEATS = 4.0  # rests learned inside phrases count up to this long (a gap of 5.2 beats)


class PhraseEnd:
    """The gap rule of a session: --gap seconds if given (`gap`); else `gap_beats` beats at
    the tempo known, and never under CLEARLY times the longest silence the player has left
    inside a phrase this session (a rest that ended a phrase early, the player going on
    within a beat, is learned too); before any tempo is known, FIRST_GAP seconds."""

    def __init__(self, gap: float | None = None, gap_beats: float = GAP_BEATS):
        self.fixed = gap
        self.gap_beats = gap_beats
        self.rest_beats = 0.0  # the longest silence left inside a phrase so far, in beats
        self.silences: list[float] = []  # seconds, inside the phrase in progress
        self._gap: tuple[int, float] = (-1, 0.0)  # (phrase length, its gap), cached

    def gap(self, listener: Listener) -> float:
        """Seconds of silence that end the phrase `listener` holds now."""
        if self.fixed is not None:
            return self.fixed
        if self._gap[0] != len(listener.phrase):
            period = listener.period()
            inside = max(self.silences, default=0.0)
            if period is None:
                gap = max(FIRST_GAP, CLEARLY * inside)
            else:
                rests = min(max(self.rest_beats * period, inside), MAX_REST_BEATS * period)
                gap = max(self.gap_beats * period, CLEARLY * rests)
            self._gap = (len(listener.phrase), gap)
        return self._gap[1]

    def went_on(self, t: float, last: Exchange) -> None:
        """A key `t` seconds into the session, the first of a phrase: if it comes within a beat
        of the `last` phrase's end, that end was early, and the silence before it is learned
        as a rest inside a phrase."""
        if last.early:
            return
        beats = (t - last.time) * last.bpm / 60.0
        if 0 <= beats <= 1:
            last.early = True
            self._learn((t - last.release) * last.bpm / 60.0)

    def next_phrase(self) -> list[float]:
        """The phrase has ended: the next one's gap is its own. Returns the silences (seconds)
        left inside the one that ended, for `learn`."""
        silences, self.silences = self.silences, []
        self._gap = (-1, 0.0)
        return silences

    def learn(self, silences: list[float], period: float) -> None:
        """The phrase that ended had these silences inside it, at `period` seconds a beat."""
        self._learn(max(silences, default=0.0) / period)

    def _learn(self, beats: float) -> None:
        self.rest_beats = min(max(self.rest_beats, beats), MAX_REST_BEATS)
        self._gap = (-1, 0.0)
