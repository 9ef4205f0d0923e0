"""`synth live --midi FILE.mid`: the session as a two-track MIDI file, the player and the model.

The file is rewritten atomically after each answer (and at the end), so a crash loses at most
the phrase in progress. Times are kept exactly as they sounded (to the tick), and the tempo
follows the player: each phrase begins a stretch at its tempo on a whole beat, where the phrase
was read, so that `synth import` (or a sequencer) sees the phrase and its answer on the same
beats as the session did. The silence before a phrase takes up the odd fraction of a beat: the
last beat before it is stretched, with a tempo change of its own.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path

import mido

from synth import files
from synth.midi import TICKS_PER_BEAT
from synth.outputs import Strike

PLAYER_CHANNEL, MODEL_CHANNEL = 0, 1
NAMES = ("player", "synth")
MAX_TEMPO = 0xFFFFFF  # microseconds per beat: the most a MIDI tempo holds (16.8 s)


@dataclass
class TempoMap:
    """Clock seconds to ticks: stretches (second, tick, microseconds per beat), in order."""

    points: list[tuple[float, int, int]] = field(default_factory=list)

    @classmethod
    def of(cls, segments: list[tuple[float, float]]) -> "TempoMap":
        """The map of phrases that begin at `second` on a beat at `bpm`, in order; before the
        first, nothing (tick 0 is the first phrase's beat)."""
        points: list[tuple[float, int, int]] = []
        for second, bpm in segments:
            tempo = min(round(mido.bpm2tempo(bpm)), MAX_TEMPO)
            if not points:
                points.append((second, 0, tempo))
                continue
            start, tick, previous = points[-1]
            period = previous / 1e6
            if second <= start:  # no time of its own: the tempo found before still holds
                continue
            beats = math.floor((second - start) / period + 1e-9)
            odd = second - start - beats * period
            if odd > 1e-4:  # the last beat before the phrase takes up the odd fraction
                beats = max(beats, 1)
                stretched = min(round((period + odd if beats > 1 or second - start >= period
                                       else odd) * 1e6), MAX_TEMPO)
                last = (start + (beats - 1) * period, tick + (beats - 1) * TICKS_PER_BEAT,
                        stretched)
                if beats == 1:
                    points[-1] = last
                else:
                    points.append(last)
                second = last[0] + stretched / 1e6
            points.append((second, tick + beats * TICKS_PER_BEAT, tempo))
        return cls(points)

    def tick(self, second: float) -> int:
        if not self.points:
            return 0
        index = max(bisect.bisect_right([p[0] for p in self.points], second) - 1, 0)
        start, tick, tempo = self.points[index]
        return max(round(tick + (second - start) * 1e6 / tempo * TICKS_PER_BEAT), 0)


class Duet:
    """What the player and the model played, in clock seconds, saved as a MIDI file."""

    def __init__(self, path: Path, default_bpm: float):
        self.path = Path(path)
        self.default_bpm = default_bpm
        self.keys: list[tuple[float, mido.Message]] = []  # the player's, as they came
        self.notes: list[tuple[float, float, int, int]] = []  # the model's: on, off, pitch, vel
        self.segments: list[tuple[float, float]] = []  # (clock second of a beat, bpm)

    def key(self, t: float, msg: mido.Message) -> None:
        self.keys.append((t, msg.copy(channel=PLAYER_CHANNEL)))

    def phrase(self, beat: float, bpm: float) -> None:
        """A phrase was read on a grid of `bpm` with a beat at clock second `beat`."""
        self.segments.append((beat, bpm))

    def answer(self, start: float, strikes: list[Strike], cut: float = math.inf) -> None:
        """The notes of an answer that began at clock second `start` and sounded until `cut`."""
        for s in strikes:
            if start + s.on < cut:
                self.notes.append((start + s.on, min(start + s.off, cut), s.pitch, s.velocity))

    def midi(self, until: float | None = None) -> mido.MidiFile:
        """The two-track file; keys still held are let go at `until` (the last time known)."""
        segments = self.segments or [(min((t for t, _ in self.keys), default=0.0),
                                      self.default_bpm)]
        tempo = TempoMap.of(segments)
        end = until if until is not None else max(
            [t for t, _ in self.keys] + [n[1] for n in self.notes] + [segments[-1][0]])
        player = [(tempo.tick(t), 1 if m.type == "note_off" or m.velocity == 0 else 2, m)
                  for t, m in self.keys]
        held: dict[int, int] = {}
        for _, _, m in player:
            held[m.note] = held.get(m.note, 0) + (1 if m.type == "note_on" and m.velocity else -1)
        player += [(tempo.tick(end), 1, mido.Message("note_off", note=n, channel=PLAYER_CHANNEL))
                   for n, count in sorted(held.items()) for _ in range(max(count, 0))]
        player += [(tick, 0, mido.MetaMessage("set_tempo", tempo=us))
                   for _, tick, us in tempo.points]
        model = []
        for on, off, pitch, velocity in self.notes:
            model.append((tempo.tick(on), 2, mido.Message(
                "note_on", note=pitch, velocity=velocity, channel=MODEL_CHANNEL)))
            model.append((tempo.tick(off), 1, mido.Message(
                "note_off", note=pitch, channel=MODEL_CHANNEL)))
        midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        for name, channel, timed in ((NAMES[0], PLAYER_CHANNEL, player),
                                     (NAMES[1], MODEL_CHANNEL, model)):
            track = mido.MidiTrack([mido.MetaMessage("track_name", name=name),
                                    mido.Message("program_change", program=0, channel=channel)])
            now = 0
            for tick, _, msg in sorted(timed, key=lambda e: (e[0], e[1])):
                track.append(msg.copy(time=tick - now))
                now = tick
            track.append(mido.MetaMessage("end_of_track", time=0))
            midi.tracks.append(track)
        return midi

    def save(self, until: float | None = None) -> Path:
        """Rewrite the file atomically with everything so far."""
        midi = self.midi(until)
        files.write_with(self.path, lambda tmp: midi.save(tmp))
        return self.path
