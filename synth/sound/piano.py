"""The built-in sampled piano (SPEC sections 2 and 6): NumPy and soundfile (plus pedalboard for
one filter).

The piano is the Salamander Grand Piano V3 (assets/piano/LICENSE): one recording every minor
third, C3-C5; a key between two recordings is the nearest one resampled to its pitch (at most
a semitone away, as Web Audio pianos do), done once by tools/make_piano_samples.py, so every
key is a file of its own. Each pitch event strikes its key at its start;
the key is held for the event's length, the recording ringing with its own decay, then comes
up: the damper fades the string over 0.12-0.3 s (lower strings longer) and the recorded sound
of the key's release plays. Release tails overlap freely.

Velocity is loudness and brightness, as on a real piano: there is one recorded velocity layer,
and a shelf (the recording plus or minus its first-order high-passed part over the first
seconds, where the hammer's brightness lives) makes a harder stroke brighter and a softer one
duller. Humanize adds a sloppy pianist's timing and velocity wobble.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synth.errors import SynthError
from synth.music.events import QUARTERS_PER_BEAT, Event, starts
from synth.music.notes import class_to_midi
from synth.music.songs import DEFAULT_BPM

RATE = 44_100
SAMPLES = Path(__file__).parent.parent / "assets" / "piano"
DEFAULT_VELOCITY = 90
LOWEST, HIGHEST = 48, 71  # the keys synth plays, C3-B4
# The recordings' first second is at RMS 0.07 (tools/make_piano_samples.py); this puts a note
# struck at velocity 100 near -12 dBFS at its peak, leaving the loudness stage room to work.
GAIN = 0.8
RELEASE_LEVEL = 0.06  # the key-release sound against the note (about -24 dB)
RELEASE_FADE = 0.5  # the release sound loses this much level per second the key was held
RELEASE_FLOOR = 0.3  # ... down to this share (the damper's thump stays)
BRIGHT_HZ = 1000.0  # velocity's shelf: the part of the sound above this changes with velocity
BRIGHT_SECONDS = 3.0  # the hammer's brightness decays within this; the shelf fades out by then
TAIL_SECONDS = 0.5  # a key's sound after it comes up: the release sound (0.46 s) outlasts the damper
TAIL_FRAMES = int(TAIL_SECONDS * RATE)
LIVE_HEAD_FRAMES = 2 * RATE  # live play starts with each key's first 2 s decoded


@dataclass(frozen=True)
class Performance:
    """How the notes are played."""

    bpm: float = DEFAULT_BPM
    humanize: float = 0.0  # 0 = machine-exact; 1 = about 20 ms timing and 15 velocity wobble
    seed: int | None = None


_decoded: dict[int, np.ndarray] = {}  # MIDI pitch -> the start of its sample decoded so far
_complete: set[int] = set()  # the pitches whose whole sample is decoded
_releases: dict[int, np.ndarray] = {}  # MIDI pitch -> its key-release sound
_details: dict[int, np.ndarray] = {}  # MIDI pitch -> velocity's shelf (see _detail)


def sample(midi: int, frames: int | None = None) -> np.ndarray:
    """The sound of a key, MIDI number -> mono float32 at 44.1 kHz: the whole of it, or at
    least its first `frames` frames (FLAC decodes from the start, so a short note decodes
    little)."""
    have = _decoded.get(midi)
    if midi not in _complete and (have is None or frames is None or len(have) < frames):
        have = _decoded[midi] = _read(SAMPLES / f"{midi}.flac", frames)
        if frames is None or len(have) < frames:
            _complete.add(midi)
    return have


def _read(path: Path, frames: int | None = None) -> np.ndarray:
    import soundfile

    try:
        audio, rate = soundfile.read(path, frames=-1 if frames is None else frames,
                                     dtype="float32")
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, OSError
        raise SynthError(f"{path}: the piano sample cannot be read ({exc}); "
                         "reinstall synth") from None
    if rate != RATE or audio.ndim != 1:
        raise SynthError(f"{path}: expected mono at {RATE} Hz; reinstall synth")
    return audio


def release_sound(midi: int) -> np.ndarray:
    """The recorded sound of the key `midi` coming up (damper and key noise)."""
    have = _releases.get(midi)
    if have is None:
        have = _releases[midi] = _read(SAMPLES / "release" / f"{midi}.flac")[:TAIL_FRAMES]
    return have


def samples(pitches: Iterable[int] | dict[int, int] = range(LOWEST, HIGHEST + 1)
            ) -> dict[int, np.ndarray]:
    """The sounds of `pitches` (all of them by default), MIDI number -> audio; given a dict
    pitch -> frames, at least that many frames of each. Their release sounds are loaded too.

    Decoding is most of the cost, and libsndfile releases the GIL, so two threads share it.
    """
    need = pitches if isinstance(pitches, dict) else dict.fromkeys(pitches)
    if len(need) > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(sample, need, need.values()))
            list(pool.map(release_sound, need))
    for pitch in need:
        release_sound(pitch)
    return {midi: sample(midi, frames) for midi, frames in sorted(need.items())}


def _detail(midi: int, sound: np.ndarray) -> np.ndarray:
    """The part of a key's sound above BRIGHT_HZ (a first-order high-pass) over its first
    BRIGHT_SECONDS, faded out over the last of them: adding it makes the note brighter,
    taking it away duller, a shelf that leaves the fundamental alone."""
    have = _details.get(midi)
    if have is None or len(have) < min(len(sound), int(BRIGHT_SECONDS * RATE)):
        import pedalboard

        span = int(BRIGHT_SECONDS * RATE)
        head = sound[:span]
        have = pedalboard.HighpassFilter(BRIGHT_HZ)(head[None, :], RATE)[0]
        # The fade sits at the same frames however much of the sound is decoded yet (the
        # filter is causal), so a note sounds the same before and after the rest is decoded.
        fade = (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, RATE))).astype(np.float32)
        if len(have) > span - RATE:
            have[span - RATE:] *= fade[: len(have) - (span - RATE)]
        _details[midi] = have
    return have


def damper_frames(midi: int) -> int:
    """How long the damper takes to stop a string: 0.3 s at C3 down to 0.12 s at B4."""
    return int((0.3 - 0.18 * (midi - LOWEST) / (HIGHEST - LOWEST)) * RATE)


def _damper_curve(length: int) -> np.ndarray:
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
    """Sample gain for a MIDI velocity: about 28 dB from velocity 20 to 127."""
    return GAIN * (float(velocity) / 100.0) ** 2


def brightness(velocity: float) -> float:
    """How much of the shelf's part a note has: 1 at the default velocity, more if harder."""
    return (float(velocity) / DEFAULT_VELOCITY) ** 1.2


@dataclass(slots=True)  # slots: a long song schedules tens of thousands of these
class _Voice:
    pitch: int
    sample: np.ndarray
    start: int  # frame the key goes down (or, for a release sound, comes up)
    gain: float
    tag: str
    release: int | None = None  # frame the key comes up
    damper: int = 0  # frames the damper takes; 0: a release sound, which is never damped
    detail: np.ndarray | None = None  # velocity's shelf (see _detail) ...
    shelf: float = 0.0  # ... and its gain

    def end(self) -> int:
        """The frame after the last one this voice sounds."""
        if self.release is None:
            return self.start + len(self.sample)
        return min(self.start + len(self.sample), self.release + self.damper)


class Voices:
    """The piano as an instrument: keys go down and up at given frames, and the sound is taken
    block by block (for live play) or all at once (for songs). A key coming up fades out over
    its damper time with a raised cosine, so stopping a note never clicks, and sounds its
    release."""

    def __init__(self, bank: dict[int, np.ndarray] | None = None) -> None:
        self.curves: dict[int, np.ndarray] = {}  # MIDI pitch -> its damper's fade
        self.voices: list[_Voice] = []
        self.pending: list[_Voice] = []  # scheduled notes, latest start first (see schedule)
        self.position = 0  # frames rendered so far
        self.grown = threading.Event()  # set when the bank's sounds have been made longer
        if bank is None:  # the whole piano, for live play
            # Every key's first seconds now (a tenth of the decoding), the rest and velocity's
            # shelves on a thread, so live play starts at once; a held key's voice moves onto
            # its longer sound on the next block (the same frames, decoded further).
            self.bank = samples(dict.fromkeys(range(LOWEST, HIGHEST + 1), LIVE_HEAD_FRAMES))
            threading.Thread(target=self._grow, daemon=True, name="piano").start()
        else:
            self.bank = bank  # MIDI pitch -> sample

    def _grow(self) -> None:
        for pitch, sound in list(self.bank.items()):
            _detail(pitch, sound)
        for pitch, sound in samples().items():
            self.bank[pitch] = sound
        self.grown.set()

    def key(self, pitch: int, velocity: float, frame: int, tag: str = "",
            release: int | None = None) -> _Voice:
        """A key struck at `frame` (and released at `release`), not yet sounding."""
        sound = self.bank[pitch]
        gain, shelf = note_gain(velocity), brightness(velocity) - 1.0
        detail = None if abs(shelf) < 1e-3 else _detail(pitch, sound)
        return _Voice(pitch, sound, frame, gain, tag, release, damper_frames(pitch), detail,
                      gain * shelf)

    def release_voice(self, voice: _Voice) -> _Voice:
        """The sound of `voice`'s key coming up: softer the longer the string has rung."""
        held = (voice.release - voice.start) / RATE
        level = RELEASE_LEVEL * max(RELEASE_FLOOR, 1.0 - RELEASE_FADE * held)
        return _Voice(voice.pitch, release_sound(voice.pitch), voice.release,
                      voice.gain * level, voice.tag)

    def down(self, pitch: int, velocity: float, frame: int, tag: str = "") -> None:
        """Press a key (MIDI pitch C3-B4) at `frame` (not before the frames already rendered)."""
        self.voices.append(self.key(pitch, velocity, max(int(frame), self.position), tag))

    def up(self, pitch: int, frame: int, tag: str = "") -> None:
        """Release the held key `pitch` pressed with `tag`, at `frame`."""
        frame = max(int(frame), self.position)
        for voice in self.voices:
            if (voice.pitch == pitch and voice.tag == tag and voice.damper
                    and voice.release is None):
                voice.release = max(frame, voice.start + 1)
                self.voices.append(self.release_voice(voice))
                return

    def cut(self, tag: str, frame: int) -> None:
        """Stop everything tagged `tag` at `frame`: later notes never start, held ones fade."""
        frame = max(int(frame), self.position)
        kept = [voice for voice in self.voices if voice.tag != tag or voice.start < frame]
        for voice in list(kept):
            if voice.tag == tag and voice.damper and (voice.release is None
                                                      or voice.release > frame):
                voice.release = max(frame, voice.start + 1)
                kept.append(self.release_voice(voice))
        self.voices = kept

    def weigh(self, weights: dict[int, float]) -> None:
        """Scale every scheduled note's level by the square root of its key's weight (the
        loudness plan's first pass)."""
        for voice in self.pending:
            scale = float(np.sqrt(weights.get(voice.pitch, 1.0)))
            voice.gain *= scale
            voice.shelf *= scale

    def busy(self) -> bool:
        return bool(self.voices or self.pending)

    def schedule(self, voices: list[_Voice]) -> None:
        """Notes known in advance, in order of their start: each joins the sounding voices only
        when a block reaches it, so a block's cost does not grow with the song's length."""
        self.pending = voices[::-1]

    def _curve(self, pitch: int) -> np.ndarray:
        curve = self.curves.get(pitch)
        if curve is None:
            curve = self.curves[pitch] = _damper_curve(damper_frames(pitch))
        return curve

    def render(self, frames: int) -> np.ndarray:
        """The next `frames` frames of sound, mono float32."""
        if self.grown.is_set():  # the held keys' voices move onto their whole sounds
            self.grown.clear()
            for voice in self.voices:
                if voice.damper:
                    voice.sample = self.bank[voice.pitch]
        begin, stop = self.position, self.position + frames
        while self.pending and self.pending[-1].start < stop:
            self.voices.append(self.pending.pop())
        out = np.zeros(frames, dtype=np.float32)
        scratch = np.empty(frames, dtype=np.float32)  # one buffer for every note's segment
        alive = []
        for voice in self.voices:
            end = voice.end()
            if end <= begin:
                continue
            alive.append(voice)
            a, b = max(begin, voice.start), min(stop, end)
            if a >= b:
                continue
            segment = np.multiply(voice.sample[a - voice.start : b - voice.start],
                                  np.float32(voice.gain), out=scratch[: b - a])
            if voice.detail is not None and a - voice.start < len(voice.detail):
                shelf = voice.detail[a - voice.start : b - voice.start]
                segment[: len(shelf)] += np.float32(voice.shelf) * shelf
            if voice.release is not None and b > voice.release:
                fade = max(a, voice.release)
                segment[fade - a :] *= self._curve(voice.pitch)[fade - voice.release :
                                                                b - voice.release]
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
    velocities: np.ndarray = field(default_factory=lambda: np.zeros(0))  # as played


def played_velocities(events: Sequence[Event], performance: Performance = Performance(),
                      velocities: Sequence[int] | None = None) -> np.ndarray:
    """The velocity each event is played with (humanized if asked), 1-127."""
    if velocities is None:
        velocities = [DEFAULT_VELOCITY] * len(events)
    velocities = np.asarray(velocities, dtype=np.float64)
    if performance.humanize > 0:
        rng = np.random.default_rng(None if performance.seed is None else performance.seed + 1)
        velocities = velocities + rng.normal(0.0, 7.0 * performance.humanize, len(velocities))
    return np.clip(velocities, 1, 127)


def score(events: Sequence[Event], performance: Performance = Performance(),
          velocities: Sequence[int] | None = None) -> Score:
    """Schedule every note of a song on a piano (without rendering any sound yet)."""
    quarter = frames_per_quarter(performance.bpm)
    begin = onsets(events, performance)
    velocities = played_velocities(events, performance, velocities)
    keys = []  # (pitch, frame down, velocity, frame up) of every note
    end = 0
    for index, (event, start) in enumerate(zip(events, starts(events))):
        end = round((start + event.quarters) * quarter)
        if event.is_rest:
            continue
        down = int(begin[index])
        # The note's length is over: the key comes up (never before it went down).
        keys.append((class_to_midi(int(event.cls)), down, velocities[index], max(end, down + 1)))
    # Every key is down and up: make only as much of each sound as its notes play.
    need: dict[int, int] = {}
    for pitch, down, _, up in keys:
        need[pitch] = max(need.get(pitch, 0), up + damper_frames(pitch) - down)
    piano = Voices(samples(need))
    voices = []
    for pitch, down, velocity, up in keys:
        voice = piano.key(pitch, velocity, down, "", up)
        voices += [voice, piano.release_voice(voice)]
    voices.sort(key=lambda voice: voice.start)  # stable: the song's order where starts tie
    piano.schedule(voices)
    quiet = max((voice.end() for voice in voices), default=0)
    return Score(piano, end + TAIL_FRAMES + int(0.05 * RATE), quiet, velocities)


def render_notes(events: Sequence[Event], performance: Performance = Performance(),
                 velocities: Sequence[int] | None = None) -> np.ndarray:
    """Dry piano audio of a song: mono float32, ending when the last release has rung out."""
    song = score(events, performance, velocities)
    return song.piano.render(song.frames)
