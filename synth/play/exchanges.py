"""What a `synth live` session said: each phrase and the answer to it (an `Exchange`), and the
--log file that keeps them, a JSON line each."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synth.play import journal, tempo
from synth.music import events as ev


@dataclass
class Exchange:
    """One phrase and the answer to it; a line of the --log file.

    `answer` holds the events drawn, and grows as the answer plays. An answer cut short
    (`interrupted`) sounded only its first `played` events; the events after them were drawn
    ahead (about half a second's worth) and never sounded, and the melody forgot them.
    """

    time: float  # seconds from the start of the session to the phrase end
    phrase: list[ev.Event]
    answer: list[ev.Event]
    latency_ms: float
    bpm: float  # the tempo of the phrase's grid and of the answer
    start: float  # seconds from the start of the session to the answer's first event
    bpm_from: str = tempo.PHRASE  # phrase, previous (phrase), default or fixed (--bpm)
    played: int = 0  # answer events that sounded before a cut (all of them if not cut)
    interrupted: bool = False
    left_out: int = 0  # phrase notes outside C3-B4
    merged: list[str] = field(default_factory=list)  # phrase notes too fast for the grid
    under: int = 0  # phrase notes left out as they began under a higher note still held
    gap: float = 0.0  # seconds of silence that ended the phrase (the rule in force then)
    release: float = 0.0  # seconds from the start of the session to the phrase's last key up
    early: bool = False  # the player went on within a beat of the phrase end
    overlapped: bool = False  # --overlap: keys came during the answer, which finished its bar

    @property
    def seconds(self) -> float:
        """How long the answer drawn so far lasts (to the end of its last event)."""
        return ev.total_beats(self.answer) * 60.0 / self.bpm

    def begun(self, t: float) -> int:
        """How many of the answer's events have begun `t` seconds into the session."""
        elapsed = (t - self.start) * self.bpm / 60.0 * ev.QUARTERS_PER_BEAT
        return sum(start <= elapsed + 1e-9 for start in ev.starts(self.answer))

    def record(self) -> dict:
        """The exchange as a line of the --log file: plain JSON values, rounded."""
        data = asdict(self)
        data["phrase"] = [e.cls for e in self.phrase]
        data["answer"] = [e.cls for e in self.answer]
        data["phrase_lengths"] = [e.beats for e in self.phrase]
        data["answer_lengths"] = [e.beats for e in self.answer]
        data["latency_ms"] = round(self.latency_ms, 3)
        data["time"] = round(self.time, 3)
        data["start"] = round(self.start, 4)
        data["bpm"] = round(self.bpm, 2)
        data["gap"] = round(self.gap, 3)
        data["gap_beats"] = round(self.gap * self.bpm / 60.0, 2)
        data["release"] = round(self.release, 3)
        delay = self.delay()
        data["delay"] = None if delay is None else round(delay, 3)
        data["delay_beats"] = None if delay is None else round(delay * self.bpm / 60.0, 2)
        return data

    def delay(self) -> float | None:
        """Seconds from the phrase's last key up to the answer's first note (None if no note
        of the answer sounded)."""
        for event, start in zip(self.answer[: self.played], ev.starts(self.answer)):
            if not event.is_rest:
                return self.start + start * 60.0 / self.bpm / ev.QUARTERS_PER_BEAT - self.release
        return None


class AnswerLog:
    """--log FILE.jsonl: one JSON object per answer, written under its final name as it
    comes, so a session that dies leaves every answer it gave (synth.play.journal)."""

    def __init__(self, path: Path):
        self.log = journal.SessionLog(path)

    def write(self, exchange: Exchange) -> None:
        """One answer's line, written to the file whole."""
        self.log.write(json.dumps(exchange.record()))

    def close(self) -> list[Path]:
        """The log is complete: the files written."""
        return [self.log.close()]

    def abandon(self) -> None:
        """The session never began: the empty log goes."""
        self.log.path.unlink(missing_ok=True)
        self.log.close()
