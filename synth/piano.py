"""The built-in sampled piano (SPEC sections 2 and 6): NumPy and soundfile only.

Each pitch event strikes its recorded sample at its start, the key is held for the event's
length, then released: a short raised-cosine fade (the damper) with no click.
Release tails overlap freely. Velocity scales loudness; humanize adds a sloppy pianist's
timing and velocity wobble.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.errors import SynthError
from synth.events import QUARTERS_PER_BEAT, Event, starts
from synth.notes import class_to_midi

RATE = 44_100
SAMPLES = Path(__file__).parent / "assets" / "piano"
DEFAULT_VELOCITY = 90
RELEASE_SECONDS = 0.25  # damper fall time after the key is released
RELEASE_FRAMES = int(RELEASE_SECONDS * RATE)
GAIN = 3.0  # the samples peak near 0.13 at velocity 100; this puts one note near -8 dBFS


@dataclass(frozen=True)
class Performance:
    """How the notes are played."""

    bpm: float = 150.0
    humanize: float = 0.0  # 0 = machine-exact; 1 = about 20 ms timing and 15 velocity wobble
    seed: int | None = None


LOWEST, HIGHEST = 48, 71  # the sampled keys, C3-B4
_decoded: dict[int, np.ndarray] = {}  # MIDI pitch -> the start of its sample decoded so far
_complete: set[int] = set()  # the pitches whose whole sample is decoded


def sample(midi: int, frames: int | None = None) -> np.ndarray:
    """A recorded note, MIDI number -> mono float32 at 44.1 kHz: the whole of it, or at least
    its first `frames` frames (FLAC decodes from the start, so a short note decodes little)."""
    have = _decoded.get(midi)
    if midi not in _complete and (have is None or frames is None or len(have) < frames):
        have = _decoded[midi] = _decode(midi, frames)
        if frames is None or len(have) < frames:
            _complete.add(midi)
    return have


def _decode(midi: int, frames: int | None) -> np.ndarray:
    import soundfile

    path = SAMPLES / f"{midi}.flac"
    try:
        audio, rate = soundfile.read(path, frames=-1 if frames is None else frames,
                                     dtype="float32")
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, OSError
        raise SynthError(f"{path}: the piano sample cannot be read ({exc}); "
                         "reinstall synth") from None
    if rate != RATE:
        raise SynthError(f"{path}: sample rate {rate}, expected {RATE}; reinstall synth")
    return audio


def samples(pitches: Iterable[int] | dict[int, int] = range(LOWEST, HIGHEST + 1)
            ) -> dict[int, np.ndarray]:
    """The recorded notes of `pitches` (all of them by default), MIDI number -> audio; given
    a dict pitch -> frames, at least that many frames of each.

    Decoding is most of the cost, and libsndfile releases the GIL, so two threads share it.
    """
    need = pitches if isinstance(pitches, dict) else dict.fromkeys(pitches)
    if len(need) > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(sample, need, need.values()))
    return {midi: sample(midi, frames) for midi, frames in sorted(need.items())}


def _release_curve(length: int) -> np.ndarray:
    return (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, length))).astype(np.float32)


def onsets(events: Sequence[Event], performance: Performance) -> np.ndarray:
    """Start time in samples of every event (humanized if asked)."""
    quarter = 60.0 / performance.bpm / QUARTERS_PER_BEAT
    times = np.asarray(starts(events), dtype=np.float64) * quarter
    if performance.humanize > 0:
        rng = np.random.default_rng(performance.seed)
        jitter = rng.normal(0.0, 0.010 * performance.humanize, len(events))
        times = np.maximum(times + np.clip(jitter, -0.03, 0.03), 0.0)
    return np.round(times * RATE).astype(np.int64)


def note_gain(velocity: float) -> float:
    """Sample gain for a MIDI velocity: louder and brighter-sounding as the key is hit harder."""
    return GAIN * (float(velocity) / 100.0) ** 1.6


@dataclass(slots=True)  # slots: a long song schedules tens of thousands of these
class _Voice:
    pitch: int
    sample: np.ndarray
    start: int  # frame the key goes down
    gain: float
    tag: str
    release: int | None = None  # frame the key comes up

    def end(self, release_frames: int) -> int:
        """The frame after the last one this voice sounds."""
        if self.release is None:
            return self.start + len(self.sample)
        return min(self.start + len(self.sample), self.release + release_frames)


class Voices:
    """The piano as an instrument: keys go down and up at given frames, and the sound is taken
    block by block (for live play) or all at once (for songs). Releases fade out over
    RELEASE_SECONDS with a raised cosine, so stopping a note never clicks."""

    def __init__(self, bank: dict[int, np.ndarray] | None = None) -> None:
        self.bank = samples() if bank is None else bank  # MIDI pitch -> sample
        self.release_frames = RELEASE_FRAMES
        self.curve = _release_curve(self.release_frames)
        self.voices: list[_Voice] = []
        self.pending: list[_Voice] = []  # scheduled notes, latest start first (see schedule)
        self.position = 0  # frames rendered so far

    def down(self, pitch: int, velocity: float, frame: int, tag: str = "") -> None:
        """Press a key (MIDI pitch C3-B4) at `frame` (not before the frames already rendered)."""
        frame = max(int(frame), self.position)
        self.voices.append(_Voice(pitch, self.bank[pitch], frame, note_gain(velocity), tag))

    def up(self, pitch: int, frame: int, tag: str = "") -> None:
        """Release the held key `pitch` pressed with `tag`, at `frame`."""
        frame = max(int(frame), self.position)
        for voice in self.voices:
            if voice.pitch == pitch and voice.tag == tag and voice.release is None:
                voice.release = max(frame, voice.start + 1)
                return

    def cut(self, tag: str, frame: int) -> None:
        """Stop everything tagged `tag` at `frame`: later notes never start, held ones fade."""
        frame = max(int(frame), self.position)
        kept = []
        for voice in self.voices:
            if voice.tag == tag and voice.start >= frame:
                continue
            if voice.tag == tag and (voice.release is None or voice.release > frame):
                voice.release = frame
            kept.append(voice)
        self.voices = kept

    def busy(self) -> bool:
        return bool(self.voices or self.pending)

    def schedule(self, voices: list[_Voice]) -> None:
        """Notes known in advance, in order of their start: each joins the sounding voices only
        when a block reaches it, so a block's cost does not grow with the song's length."""
        self.pending = voices[::-1]

    def render(self, frames: int) -> np.ndarray:
        """The next `frames` frames of sound, mono float32."""
        begin, stop = self.position, self.position + frames
        while self.pending and self.pending[-1].start < stop:
            self.voices.append(self.pending.pop())
        out = np.zeros(frames, dtype=np.float32)
        scratch = np.empty(0, dtype=np.float32)  # one buffer for every note's segment
        alive = []
        for voice in self.voices:
            end = voice.end(self.release_frames)
            if end <= begin:
                continue
            alive.append(voice)
            a, b = max(begin, voice.start), min(stop, end)
            if a >= b:
                continue
            if len(scratch) < b - a:
                scratch = np.empty(max(b - a, min(frames, len(voice.sample))), dtype=np.float32)
            segment = np.multiply(voice.sample[a - voice.start : b - voice.start],
                                  np.float32(voice.gain), out=scratch[: b - a])
            if voice.release is not None and b > voice.release:
                fade = max(a, voice.release)
                segment[fade - a :] *= self.curve[fade - voice.release : b - voice.release]
            out[a - begin : b - begin] += segment
        self.voices = alive
        self.position = stop
        return out


def frames_per_quarter(bpm: float) -> float:
    return 60.0 / bpm / QUARTERS_PER_BEAT * RATE


@dataclass
class Score:
    """A song ready to play: `piano.render(n)` gives its next n frames, block by block."""

    piano: Voices
    frames: int  # the song's length: its last event's end, the release, 50 ms
    quiet_from: int  # the frame from which nothing sounds


def score(events: Sequence[Event], performance: Performance = Performance(),
          velocities: Sequence[int] | None = None) -> Score:
    """Schedule every note of a song on a piano (without rendering any sound yet)."""
    quarter = frames_per_quarter(performance.bpm)
    begin = onsets(events, performance)
    if velocities is None:
        velocities = [DEFAULT_VELOCITY] * len(events)
    velocities = np.asarray(velocities, dtype=np.float64)
    if performance.humanize > 0:
        rng = np.random.default_rng(None if performance.seed is None else performance.seed + 1)
        velocities = velocities + rng.normal(0.0, 7.0 * performance.humanize, len(velocities))
    velocities = np.clip(velocities, 1, 127)
    keys = []  # (pitch, frame down, gain, frame up) of every note
    end = 0
    for index, (event, start) in enumerate(zip(events, starts(events))):
        end = round((start + event.quarters) * quarter)
        if event.is_rest:
            continue
        down = int(begin[index])
        # The note's length is over: the key comes up (never before it went down).
        keys.append((class_to_midi(int(event.cls)), down, note_gain(velocities[index]),
                     max(end, down + 1)))
    # Every key is down and up: decode only as much of each sample as its notes sound.
    need: dict[int, int] = {}
    for pitch, down, _, up in keys:
        need[pitch] = max(need.get(pitch, 0), up + RELEASE_FRAMES - down)
    piano = Voices(samples(need))
    voices = [_Voice(pitch, piano.bank[pitch], down, gain, "", up)
              for pitch, down, gain, up in keys]
    voices.sort(key=lambda voice: voice.start)  # stable: the song's order where starts tie
    piano.schedule(voices)
    quiet = max((voice.end(RELEASE_FRAMES) for voice in voices), default=0)
    return Score(piano, end + RELEASE_FRAMES + int(0.05 * RATE), quiet)


def render_notes(events: Sequence[Event], performance: Performance = Performance(),
                 velocities: Sequence[int] | None = None) -> np.ndarray:
    """Dry piano audio of a song: mono float32, ending when the last release has rung out."""
    song = score(events, performance, velocities)
    return song.piano.render(song.frames)

