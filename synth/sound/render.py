"""One render path for every command: piano, loudness, effects, and saving audio atomically."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from synth import files
from synth.sound import loudness
from synth.sound.effects import Effects, response, stream
from synth.errors import SynthError
from synth.music.events import Event, events_of
from synth.sound.piano import DEFAULT_VELOCITY, RATE, Performance, Score, sample, score

FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}


def render_song(events: Sequence[Event], performance: Performance = Performance(),
                effects: Effects = Effects(), velocities: Sequence[int] | None = None
                ) -> np.ndarray:
    """A song as stereo float32 audio at 44.1 kHz, through the piano and the effects: the
    blocks of stream_song, joined."""
    blocks = list(stream_song(events, performance, effects, velocities))
    return np.concatenate(blocks) if blocks else np.zeros((0, 2), dtype=np.float32)


def stream_song(events: Sequence[Event], performance: Performance = Performance(),
                effects: Effects = Effects(), velocities: Sequence[int] | None = None
                ) -> Iterator[np.ndarray]:
    """A song as stereo float32 blocks of at most about 1.5 s, so memory does not grow with
    its length, at the loudness `effects` asks for (planned by a first pass over the dry
    piano, see loudness.py)."""
    if not events:
        raise SynthError("nothing to render: the song has no events")
    effects.check()
    # The chain's response is measured (the reverb's impulse response) while the piano decodes
    # its samples, and the loudness plan made while the chain starts on the first blocks (the
    # gain is needed only once the first block reaches the limiter): all release the GIL.
    with ThreadPoolExecutor(max_workers=1) as pool:
        measured = pool.submit(response, effects, RATE)
        song = score(events, performance, velocities)
        measured.result()
    planner = ThreadPoolExecutor(max_workers=1)
    planned = planner.submit(lambda: loudness.gain_for(
        planned_loudness(song, events, performance, velocities, effects), effects.loudness))
    planner.shutdown(wait=False)  # its thread ends with the plan
    first = [song]  # the next play() starts from a fresh score (the piano is consumed)

    def play():
        return (first.pop() if first else score(events, performance, velocities)).piano.render

    return stream(play, song.frames, song.quiet_from, RATE, effects, planned.result)


def planned_loudness(song: Score, events: Sequence[Event], performance: Performance,
                     velocities: Sequence[int] | None, effects: Effects) -> float:
    """The integrated loudness (LUFS) the song would have through the chain at gain 1,
    estimated from a first pass over the dry piano (its keys weighted by their spectra)."""
    def weighted(weights: dict[int, float]):
        again = score(events, performance, velocities)
        again.piano.weigh(weights)
        return again.piano.render

    return loudness.plan(song.piano.bank,
                         lambda key: loudness.spectrum(sample(key, loudness.SPECTRUM_FRAMES)),
                         response(effects, RATE), weighted, min(song.frames, song.quiet_from))


# What live play is measured against: a phrase at the default touch, a note a beat at 120 bpm
# over both octaves. A player who plays softer or louder than that sounds softer or louder.
REFERENCE_PHRASE = events_of([13, 15, 17, 18, 20, 22, 24, 20, 17, 13, 8, 5, 1, 5, 8, 13])


@lru_cache(maxsize=8)
def live_gain(effects: Effects) -> float:
    """The gain of live play (effects.Stream): the one a reference phrase at the default
    touch gets, so live play and rendered songs of that touch sound at the same level."""
    performance = Performance(bpm=120.0)
    velocities = [DEFAULT_VELOCITY] * len(REFERENCE_PHRASE)
    song = score(REFERENCE_PHRASE, performance, velocities)
    return loudness.gain_for(planned_loudness(song, REFERENCE_PHRASE, performance, velocities,
                                              effects), effects.loudness)


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
                rate: int = RATE, exclusive: bool = False) -> None:
    """Write audio given block by block, (frames, channels) each, as WAV (16-bit), FLAC or
    OGG, atomically: under a temporary name renamed into place once the last block is in, so
    an error or Ctrl-C on the way leaves nothing under `path`. `exclusive`: only as a new
    file (files.NameTaken if one appeared meanwhile, which is kept as it is)."""
    import soundfile

    path = check_audio_path(path)
    fmt = FORMATS[path.suffix.lower()]
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]

    def write(tmp: Path) -> None:
        # Each block is converted and written on a thread of its own while this one makes the
        # next (a song's reverb runs here, the slowest stage); one block in flight at a time.
        try:
            with soundfile.SoundFile(tmp, "w", rate, channels, subtype, format=fmt) as out, \
                    ThreadPoolExecutor(max_workers=1) as writer:
                def put(block: np.ndarray) -> None:
                    # WAV: the same samples soundfile would write, several times faster
                    out.write(pcm16(block) if fmt == "WAV" else block)

                written = None
                for block in blocks:
                    writing = writer.submit(put, block)
                    if written is not None:
                        written.result()
                    written = writing
                if written is not None:
                    written.result()
        finally:
            if hasattr(blocks, "close"):
                blocks.close()  # a generator stops its work now, not when collected

    files.write_with(path, write, exclusive)


def pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio as 16-bit samples, exactly as libsndfile converts them for WAV (round to
    32 bits, keep the top 16; full scale clips), in C order. Converted a block at a time, so
    the only large new array is the result."""
    audio = np.asarray(audio)
    out = np.empty(audio.shape, dtype=np.int16)
    if audio.ndim == 2 and not audio.flags.c_contiguous:
        # (frames, 2) views of (2, frames) arrays, as the chain gives them: a channel at a time,
        # its samples side by side (frame by frame, NumPy would move two samples a call)
        for channel in range(audio.shape[1]):
            out[:, channel] = pcm16(audio[:, channel])
        return out
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
