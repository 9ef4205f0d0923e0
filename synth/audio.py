"""One render path for every command: piano, effects, and saving audio atomically."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from synth import files
from synth.effects import Effects, apply, stream
from synth.errors import SynthError
from synth.events import Event
from synth.piano import RATE, Performance, render_notes, score

FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}


def render_song(events: Sequence[Event], performance: Performance = Performance(),
                effects: Effects = Effects(), velocities: Sequence[int] | None = None
                ) -> np.ndarray:
    """A song as stereo float32 audio at 44.1 kHz, through the piano and the effects."""
    if not events:
        raise SynthError("nothing to render: the song has no events")
    return apply(render_notes(events, performance, velocities), RATE, effects)


def stream_song(events: Sequence[Event], performance: Performance = Performance(),
                effects: Effects = Effects(), velocities: Sequence[int] | None = None
                ) -> Iterator[np.ndarray]:
    """The same song as render_song, as stereo float32 blocks of at most about 1.5 s, so
    memory does not grow with its length. Only the ceiling differs: a hard clip at -1 dBFS
    after the limiter instead of a gain over the whole song (see effects.stream)."""
    if not events:
        raise SynthError("nothing to render: the song has no events")
    effects.check()
    song = score(events, performance, velocities)
    first = [song]  # the next play() starts from a fresh score (the piano is consumed)

    def play():
        return (first.pop() if first else score(events, performance, velocities)).piano.render

    return stream(play, song.frames, song.quiet_from, RATE, effects)


def check_audio_path(path: Path) -> Path:
    if Path(path).suffix.lower() not in FORMATS:
        raise SynthError(f"{path}: cannot write {Path(path).suffix or 'a file without a suffix'}"
                         f": expected {', '.join(FORMATS)}")
    return Path(path)


def save_audio(path: Path, audio: np.ndarray, rate: int = RATE) -> None:
    """Write WAV (16-bit), FLAC or OGG with soundfile, atomically."""
    audio = np.asarray(audio)
    write_audio(path, (audio[start : start + _BLOCK] for start in range(0, len(audio), _BLOCK)),
                1 if audio.ndim == 1 else audio.shape[1], rate)


def write_audio(path: Path, blocks: Iterable[np.ndarray], channels: int = 2,
                rate: int = RATE) -> None:
    """Write audio given block by block, (frames, channels) each, as WAV (16-bit), FLAC or
    OGG, atomically: under a temporary name renamed into place once the last block is in, so
    an error or Ctrl-C on the way leaves nothing under `path`."""
    import soundfile

    path = check_audio_path(path)
    fmt = FORMATS[path.suffix.lower()]
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]

    def write(tmp: Path) -> None:
        try:
            with soundfile.SoundFile(tmp, "w", rate, channels, subtype, format=fmt) as out:
                for block in blocks:
                    # WAV: the same samples soundfile would write, several times faster
                    out.write(pcm16(block) if fmt == "WAV" else block)
        finally:
            if hasattr(blocks, "close"):
                blocks.close()  # a generator stops its work now, not when collected

    files.write_with(path, write)


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
