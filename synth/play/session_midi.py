"""`synth live --midi FILE.mid`: the session as a two-track MIDI file, the player and the model.

The file is rewritten atomically after each answer (and at the end), so a crash loses at most
the phrase in progress. Times are kept exactly as they sounded (to the tick), and the tempo
follows the player: each phrase begins a stretch at its tempo on a whole beat, where the phrase
was read, so that `synth import` (or a sequencer) sees the phrase and its answer on the same
beats as the session did. The silence before a phrase takes up the odd fraction of a beat: the
last beat before it is stretched, with a tempo change of its own.

Saving costs only what is new: whatever lies before the last tempo change can no longer move,
so it is kept encoded, and each save encodes the rest and writes the bytes.
"""

from __future__ import annotations

import bisect
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import mido
from mido.midifiles.midifiles import encode_variable_int

from synth import files
from synth.music.midi import TICKS_PER_BEAT
from synth.play.outputs import Strike

PLAYER_CHANNEL, MODEL_CHANNEL = 0, 1
NAMES = ("player", "synth")
MAX_TEMPO = 0xFFFFFF  # microseconds per beat: the most a MIDI tempo holds (16.8 s)


@dataclass
class TempoMap:
    """Clock seconds to ticks: stretches (second, tick, microseconds per beat), in order."""

    points: list[tuple[float, int, int]] = field(default_factory=list)

    @classmethod
    def of(cls, segments: list[tuple[float, float]]) -> "TempoMap":
        tempo = cls()
        for second, bpm in segments:
            tempo.add(second, bpm)
        return tempo

    def add(self, second: float, bpm: float) -> None:
        """A phrase begins at clock `second` on a beat at `bpm` (tick 0 is the first one's
        beat). Only the map from the last stretch's start on can change."""
        points = self.points
        tempo = min(round(mido.bpm2tempo(bpm)), MAX_TEMPO)
        if not points:
            points.append((second, 0, tempo))
            return
        start, tick, previous = points[-1]
        period = previous / 1e6
        if second <= start:  # no time of its own: the tempo found before still holds
            return
        beats = math.floor((second - start) / period + 1e-9)
        odd = second - start - beats * period
        if odd > 1e-4:  # the last beat before the phrase takes up the odd fraction
            beats = max(beats, 1)
            stretched = min(round((period + odd if second - start >= period else odd) * 1e6),
                            MAX_TEMPO)
            last = (start + (beats - 1) * period, tick + (beats - 1) * TICKS_PER_BEAT,
                    stretched)
            if beats == 1:
                points[-1] = last
            else:
                points.append(last)
            second = last[0] + stretched / 1e6
        points.append((second, tick + beats * TICKS_PER_BEAT, tempo))

    def tick(self, second: float) -> int:
        if not self.points:
            return 0
        index = max(bisect.bisect_right(self.points, (second, math.inf)) - 1, 0)
        start, tick, tempo = self.points[index]
        return max(round(tick + (second - start) * 1e6 / tempo * TICKS_PER_BEAT), 0)


class _Track:
    """One track's bytes: the part that can no longer change, encoded once."""

    def __init__(self, name: str, channel: int):
        self.done = bytearray()
        self.tick = 0
        self.pending: list[tuple[float, int, mido.Message]] = []  # (second, order, message)
        self.done += self._encode([(0, 0, mido.MetaMessage("track_name", name=name)),
                                   (0, 0, mido.Message("program_change", channel=channel))])

    def _encode(self, timed: list[tuple[int, int, object]]) -> bytes:
        out = bytearray()
        for tick, _, msg in sorted(timed, key=lambda e: (e[0], e[1])):
            out += bytes(encode_variable_int(tick - self.tick)) + bytes(msg.bytes())
            self.tick = tick
        return bytes(out)

    def chunk(self, tempo: TempoMap, before: float, extra: list) -> bytes:
        """The track's chunk: events before clock second `before` are settled for good.
        `extra` holds (tick, order, message, second) events already on ticks."""
        settled = [(tempo.tick(t), order, m) for t, order, m in self.pending if t < before]
        self.pending = [e for e in self.pending if e[0] >= before]
        self.done += self._encode(settled + [e[:3] for e in extra if e[3] < before])
        tick = self.tick
        tail = self._encode([(tempo.tick(t), order, m) for t, order, m in self.pending] +
                            [e[:3] for e in extra if e[3] >= before])
        tail += b"\x00" + bytes(mido.MetaMessage("end_of_track").bytes())
        self.tick = tick
        data = bytes(self.done) + tail
        return b"MTrk" + struct.pack(">I", len(data)) + data


class SessionMidi:
    """What the player and the model played, in clock seconds, saved as a MIDI file."""

    def __init__(self, path: Path, default_bpm: float):
        self.path = Path(path)
        self.default_bpm = default_bpm
        self.tempo = TempoMap()
        self.tracks = (_Track(NAMES[0], PLAYER_CHANNEL), _Track(NAMES[1], MODEL_CHANNEL))
        self.held: dict[int, int] = {}  # the player's keys down, and how many times
        self.first: float | None = None  # the first key's time
        self.last = -math.inf  # the latest time known
        self.tempi_done = 0  # tempo changes already settled

    def key(self, t: float, msg: mido.Message) -> None:
        down = msg.type == "note_on" and msg.velocity > 0
        self.tracks[0].pending.append((t, 2 if down else 1, msg.copy(channel=PLAYER_CHANNEL,
                                                                      time=0)))
        self.held[msg.note] = self.held.get(msg.note, 0) + (1 if down else -1)
        self.first = t if self.first is None else self.first
        self.last = max(self.last, t)

    def phrase(self, beat: float, bpm: float) -> None:
        """A phrase was read on a grid of `bpm` with a beat at clock second `beat`."""
        self.tempo.add(beat, bpm)

    def answer(self, start: float, strikes: list[Strike], cut: float = math.inf) -> None:
        """The notes of an answer that began at clock second `start` and sounded until `cut`."""
        for s in strikes:
            if start + s.on < cut:
                on, off = start + s.on, min(start + s.off, cut)
                self.tracks[1].pending += [
                    (on, 2, mido.Message("note_on", note=s.pitch, velocity=s.velocity,
                                         channel=MODEL_CHANNEL)),
                    (off, 1, mido.Message("note_off", note=s.pitch, channel=MODEL_CHANNEL))]
                self.last = max(self.last, off)

    def save(self, until: float | None = None) -> Path:
        """Rewrite the file atomically with everything so far; keys still held are let go at
        `until` (the last time known by default)."""
        until = self.last if until is None else until
        if self.tempo.points:
            tempo, before = self.tempo, self.tempo.points[-1][0]
        else:  # nothing answered yet: the default tempo from the first key, nothing settled
            tempo, before = TempoMap.of([(self.first or 0.0, self.default_bpm)]), -math.inf
        # Tempo changes: those before the last are settled (with their tick as the time).
        metas = [(tick, 0, mido.MetaMessage("set_tempo", tempo=us), second)
                 for second, tick, us in tempo.points[self.tempi_done:]]
        if before > -math.inf:
            self.tempi_done = max(len(tempo.points) - 1, 0)
        offs = [(tempo.tick(until), 1, mido.Message("note_off", note=note, channel=PLAYER_CHANNEL),
                 math.inf) for note, count in sorted(self.held.items()) for _ in range(count)]
        chunks = [self.tracks[0].chunk(tempo, before, metas + offs),
                  self.tracks[1].chunk(tempo, before, [])]
        header = b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), TICKS_PER_BEAT)
        files.write_bytes(self.path, header + b"".join(chunks))
        return self.path
