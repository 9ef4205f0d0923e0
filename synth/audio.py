"""One render path for every command: piano, effects, and saving audio atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synth import files
from synth.effects import Effects, apply
from synth.errors import SynthError
from synth.events import Event
from synth.piano import RATE, Performance, render_notes

FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}


def render_song(events: Sequence[Event], performance: Performance = Performance(),
                effects: Effects = Effects(), velocities: Sequence[int] | None = None
                ) -> np.ndarray:
    """A song as stereo float32 audio at 44.1 kHz, through the piano and the effects."""
    if not events:
        raise SynthError("nothing to render: the song has no events")
    return apply(render_notes(events, performance, velocities), RATE, effects)


def check_audio_path(path: Path) -> Path:
    if Path(path).suffix.lower() not in FORMATS:
        raise SynthError(f"{path}: cannot write {Path(path).suffix or 'a file without a suffix'}"
                         f": expected {', '.join(FORMATS)}")
    return Path(path)


def save_audio(path: Path, audio: np.ndarray, rate: int = RATE) -> None:
    """Write WAV (16-bit), FLAC or OGG with soundfile, atomically."""
    import soundfile

    path = check_audio_path(path)
    fmt = FORMATS[path.suffix.lower()]
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]
    if fmt == "WAV":
        audio = pcm16(audio)  # the same samples soundfile would write, several times faster
    files.write_with(path, lambda tmp: soundfile.write(tmp, audio, rate, format=fmt,
                                                       subtype=subtype))


def pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio as 16-bit samples, exactly as libsndfile converts them for WAV (round to
    32 bits, keep the top 16; full scale clips), in C order. Converted a block at a time, so
    the only large new array is the result."""
    audio = np.asarray(audio)
    out = np.empty(audio.shape, dtype=np.int16)
    scratch = np.empty((min(len(audio), _BLOCK), *audio.shape[1:]), dtype=np.float32)
    for start in range(0, len(audio), _BLOCK):
        part = audio[start : start + _BLOCK]
        work = scratch[: len(part)]
        np.clip(part, -1.0, np.float32(0.99999994), out=work)  # the largest float32 below 1
        work *= np.float32(2.0**31)  # powers of two: every product below is exact
        np.rint(work, out=work)
        work *= np.float32(2.0**-16)
        np.floor(work, out=work)
        out[start : start + len(part)] = work
    return out


_BLOCK = 1 << 16  # frames converted at a time
