"""The studio chain (SPEC section 6): pedalboard's reverb and low-pass, then a limiter.

Peaks never pass -1 dBFS: pedalboard's Limiter does the musical work, and a final gain check
guarantees the ceiling even on the rare transient the limiter lets through.

A song goes through the chain block by block, the low-pass and the limiter on a second thread
working on the blocks after and before the one the reverb is making (pedalboard releases the
GIL), so two cores share the work; streaming with reset=False gives exactly the samples of one
call over the whole song.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from synth.errors import SynthError

CEILING_DB = -1.0
REVERB_TAIL_SECONDS = 2.0
BLOCK = 1 << 16  # frames the reverb hands to the limiter at a time (about 1.5 s)


@dataclass(frozen=True)
class Effects:
    """Effect settings; every one is a command-line flag."""

    room_size: float = 0.5
    wet: float = 0.22
    cutoff: float = 7000.0
    enabled: bool = True

    def check(self) -> "Effects":
        if not 0.0 <= self.room_size <= 1.0:
            raise SynthError(f"--room-size {self.room_size:g} is out of range: expected 0-1")
        if not 0.0 <= self.wet <= 1.0:
            raise SynthError(f"--wet {self.wet:g} is out of range: expected 0-1")
        if not 20.0 <= self.cutoff <= 20_000.0:
            raise SynthError(f"--cutoff {self.cutoff:g} Hz is out of range: expected 20-20000")
        return self


def ceiling(audio: np.ndarray, ceiling_db: float = CEILING_DB) -> np.ndarray:
    """Scale down, if needed, so no sample passes the ceiling."""
    gain = _ceiling_gain(audio, ceiling_db)
    return audio if gain is None else audio * gain


def _ceiling_gain(audio: np.ndarray, ceiling_db: float = CEILING_DB) -> np.float32 | None:
    """The gain that brings the peak down to the ceiling, or None if it is below it."""
    limit = 10 ** (ceiling_db / 20)
    peak = max(float(audio.max()), -float(audio.min())) if audio.size else 0.0
    return np.float32(limit / peak * 0.9999) if peak > limit else None


def _lowpass(effects: Effects):
    import pedalboard

    return pedalboard.LowpassFilter(cutoff_frequency_hz=effects.cutoff)


def _reverb(effects: Effects):
    import pedalboard

    return pedalboard.Reverb(room_size=effects.room_size, wet_level=effects.wet,
                             dry_level=1.0 - effects.wet * 0.5, width=1.0)


def _limiter():
    import pedalboard

    return pedalboard.Limiter(threshold_db=CEILING_DB - 0.5, release_ms=100.0)


def _room(effects: Effects):
    import pedalboard

    return pedalboard.Pedalboard([_reverb(effects), _limiter()])


def apply(audio: np.ndarray, rate: int, effects: Effects = Effects()) -> np.ndarray:
    """Stereo float32 (frames, 2) audio with the chain applied; mono input is spread to stereo."""
    effects.check()
    mono = np.asarray(audio, dtype=np.float32)
    if not effects.enabled:
        return ceiling(np.stack([mono, mono], axis=1))
    tail = int(REVERB_TAIL_SECONDS * effects.room_size * rate)
    audio = _trim_silence(_chain(mono, len(mono) + tail, rate, effects).T, rate)
    gain = _ceiling_gain(audio)
    if gain is not None:
        audio *= gain  # in place: the chain's output is ours, and a copy costs as much again
    return audio


def _chain(mono: np.ndarray, frames: int, rate: int, effects: Effects) -> np.ndarray:
    """Low-pass, reverb and limiter over mono audio followed by silence up to `frames`;
    returns (2, frames). The reverb, the costliest, runs on this thread; a helper thread
    filters the block after it and limits the block before it."""
    lowpass, reverb, limiter = _lowpass(effects), _reverb(effects), _limiter()
    out = np.empty((2, frames), dtype=np.float32)
    if not frames:
        return out

    def prepare(start: int) -> np.ndarray:
        size = min(BLOCK, frames - start)
        block = mono[start : start + size]
        if len(block) < size:  # the reverb's tail: silence after the song
            block = np.concatenate([block, np.zeros(size - len(block), dtype=np.float32)])
        # Both effects are linear, so filtering the mono signal before the stereo reverb
        # gives the same sound as filtering after it, at half the cost.
        return np.repeat(lowpass(block[None, :], rate, reset=False), 2, axis=0)

    def limit(wet: np.ndarray, start: int) -> None:
        out[:, start : start + wet.shape[1]] = limiter(wet, rate, reset=False)

    with ThreadPoolExecutor(max_workers=1) as helper:  # one worker: its tasks run in order
        ready = helper.submit(prepare, 0)
        done = []
        for start in range(0, frames, BLOCK):
            block = ready.result()
            if start + BLOCK < frames:
                ready = helper.submit(prepare, start + BLOCK)
            done.append(helper.submit(limit, reverb(block, rate, reset=False), start))
        for block in done:
            block.result()
    return out


class Stream:
    """The same chain for live play, block by block: the reverb tail carries from one block to
    the next. The ceiling is a hard clip here, as no block can see the ones after it."""

    def __init__(self, rate: int, effects: Effects = Effects()):
        self.rate = rate
        self.effects = effects.check()
        self.lowpass = _lowpass(effects)
        self.room = _room(effects)
        self.limit = np.float32(10 ** (CEILING_DB / 20))

    def process(self, mono: np.ndarray) -> np.ndarray:
        """Stereo float32 (frames, 2) for the next block of mono audio."""
        block = np.asarray(mono, dtype=np.float32)[None, :]
        if self.effects.enabled:
            block = self.lowpass(block, self.rate, reset=False)
            stereo = self.room(np.repeat(block, 2, axis=0), self.rate, reset=False).T
        else:
            stereo = np.repeat(block, 2, axis=0).T
        return np.clip(stereo, -self.limit, self.limit)


def _trim_silence(audio: np.ndarray, rate: int, floor_db: float = -70.0) -> np.ndarray:
    """Cut the inaudible end of the reverb tail (searched backwards, block by block)."""
    floor = 10 ** (floor_db / 20)
    block = rate // 10
    end = len(audio)
    while end > 0 and np.max(np.abs(audio[max(end - block, 0) : end])) <= floor:
        end -= block
    return audio[: max(end, 0)]


def db(value: float) -> float:
    return 20 * math.log10(max(value, 1e-12))
