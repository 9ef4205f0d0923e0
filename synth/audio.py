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
    files.write_with(path, lambda tmp: soundfile.write(tmp, audio, rate, format=fmt,
                                                       subtype=subtype))
