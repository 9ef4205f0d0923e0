"""The studio chain (SPEC section 6): pedalboard's 24 dB/octave low-pass and reverb, the song's
loudness gain, then a limiter for the last peaks.

Songs come out at a listening level: -16 LUFS integrated by default (ITU-R BS.1770, Effects'
`loudness`), true peaks at or below -1 dBTP. The gain is planned before the first block (see
loudness.py) and handed in; the limiter, a look-ahead one with its ceiling a little under
-1 dBFS (the low-passed piano's peaks between samples rise less than that above its samples),
works only on the loudest strokes, so the playing keeps its dynamics.

A song goes through the chain block by block, the piano, the low-pass, the gain and the limiter
on a second thread working on the blocks after and before the one the reverb is making
(pedalboard releases the GIL), so two cores share the work; streaming with reset=False gives
the samples of one call over the whole song, and memory does not grow with the song's length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from synth.sound import loudness as lufs
from synth.errors import SynthError

CEILING_DB = -1.0  # true peak, dBTP
LIMIT_DB = -1.25  # the limiter's ceiling on samples: room for the peaks between them
LIMIT = np.float32(10 ** (LIMIT_DB / 20))
LOOKAHEAD_MS = 5.0  # the limiter sees a stroke coming and turns down over this, not at once
RELEASE_MS = 100.0  # ... and comes back up with this time constant
REVERB_TAIL_SECONDS = 2.0
BLOCK = 1 << 16  # frames the reverb hands to the limiter at a time (about 1.5 s)
# pedalboard's LadderFilter saturates like an analogue one (tanh) at ordinary levels (10% error
# on noise at 0.3), and far down its own error floor shows (at -60 dB it fills the octaves above
# the cutoff); 24 dB down (the piano's peaks near -35 dBFS inside) it is linear and clean: on a
# song, -11 dB at the cutoff, -36 dB above twice the cutoff, as a 24 dB/octave slope gives.
LADDER_HEADROOM = np.float32(1 / 16)


@dataclass(frozen=True)
class Effects:
    """Effect and level settings; every one is a command-line flag."""

    room_size: float = 0.5
    wet: float = 0.22
    cutoff: float = 6000.0  # the 24 dB/octave low-pass: -3 dB near 4.3 kHz, -24 dB an octave up
    enabled: bool = True  # False: no reverb or low-pass (the level is the same)
    loudness: float = lufs.TARGET  # LUFS, integrated

    def check(self) -> "Effects":
        if not 0.0 <= self.room_size <= 1.0:
            raise SynthError(f"--room-size {self.room_size:g} is out of range: expected 0-1")
        if not 0.0 <= self.wet <= 1.0:
            raise SynthError(f"--wet {self.wet:g} is out of range: expected 0-1")
        if not 20.0 <= self.cutoff <= 20_000.0:
            raise SynthError(f"--cutoff {self.cutoff:g} Hz is out of range: expected 20-20000")
        if not -40.0 <= self.loudness <= -6.0:
            raise SynthError(f"--loudness {self.loudness:g} LUFS is out of range: "
                             "expected -40 to -6")
        return self


class Lowpass:
    """The 24 dB/octave low-pass (pedalboard's LadderFilter), mono, kept linear."""

    def __init__(self, cutoff: float, rate: int):
        import pedalboard

        self.filter = pedalboard.LadderFilter(pedalboard.LadderFilter.Mode.LPF24,
                                              cutoff_hz=cutoff, resonance=0.0, drive=1.0)
        self.rate = rate

    def __call__(self, mono: np.ndarray) -> np.ndarray:
        out = self.filter(mono[None, :] * LADDER_HEADROOM, self.rate, reset=False)[0]
        out *= np.float32(1 / LADDER_HEADROOM)
        return out


def reverb(effects: Effects):
    import pedalboard

    return pedalboard.Reverb(room_size=effects.room_size, wet_level=effects.wet,
                             dry_level=1.0 - effects.wet * 0.5, width=1.0)


class Limiter:
    """A look-ahead peak limiter whose gain never steps: it goes down in a straight line over
    the LOOKAHEAD_MS before a peak and comes back up smoothly (exponentially, RELEASE_MS),
    so it adds no clicks or fizz of its own (a limiter whose gain jumps, as pedalboard's do,
    fills the octaves the low-pass has just emptied). Stereo (2, n) blocks in, as many frames
    out, the sound delayed by `delay` frames. NumPy, 32 frames at a time; where nothing
    needs limiting, the block passes untouched."""

    CHUNK = 32

    def __init__(self, rate: int, ceiling_db: float | None = None):
        self.ceiling = 10 ** ((LIMIT_DB if ceiling_db is None else ceiling_db) / 20)
        self.ahead = max(1, int(LOOKAHEAD_MS / 1000 * rate / self.CHUNK))  # chunks
        # the reduction (1 - gain) shrinks by this factor a chunk once the peak has passed
        self.recover = math.exp(-self.CHUNK / (RELEASE_MS / 1000 * rate))
        self.delay = (self.ahead + 1) * self.CHUNK
        self.pending = np.zeros((2, self.delay), dtype=np.float32)  # input not yet output
        self.last = 1.0  # the gain of the last chunk out

    def __call__(self, block: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, block], axis=1)
        chunks = self.pending.shape[1] // self.CHUNK
        done = chunks - self.ahead - 1  # chunks whose look-ahead is all here
        if done <= 0:
            return np.zeros((2, 0), dtype=np.float32)
        frames = done * self.CHUNK
        peaks = np.abs(self.pending[:, : chunks * self.CHUNK]).reshape(2, chunks, -1)
        need = np.minimum(1.0, self.ceiling / np.maximum(peaks.max(axis=(0, 2)), 1e-12))
        if self.last >= 1.0 and need.min() >= 1.0:  # nothing to limit
            out, self.pending = self.pending[:, :frames], self.pending[:, frames:]
            return out
        # Down in a straight line over `ahead` chunks to what each peak needs ...
        gain = need[: done + 1].copy()
        for j in range(1, self.ahead + 1):
            np.minimum(gain, need[j : j + done + 1] + (1.0 - need[j : j + done + 1])
                       * (j / (self.ahead + 1)), out=gain)
        # ... and back up: the reduction r = 1 - gain decays by `recover` a chunk, so
        # log r_k = max(log need_k, log r_{k-1} + log recover): a running maximum.
        steps = np.arange(done + 2) * math.log(self.recover)
        with np.errstate(divide="ignore"):
            logs = np.log(1.0 - np.concatenate([[self.last], gain]))
        smooth = 1.0 - np.exp(np.maximum.accumulate(logs - steps) + steps)
        # Straight lines between chunk edges, each edge at most either side's gain.
        edges = np.minimum(smooth[:-1], smooth[1:])
        curve = np.interp(np.arange(frames), np.arange(done + 1) * self.CHUNK, edges)
        out = self.pending[:, :frames] * curve.astype(np.float32)
        np.clip(out, -self.ceiling, self.ceiling, out=out)  # float rounding at the ceiling
        self.last = float(smooth[done])
        self.pending = self.pending[:, frames:]
        return out


@lru_cache(maxsize=8)
def response(effects: Effects, rate: int) -> lufs.Response:
    """What the chain before the limiter does to loudness (see loudness.Response)."""
    if not effects.enabled:
        return lufs.response(rate)
    frames = lufs.SHORT_IR_FRAMES if effects.room_size <= 0.5 else lufs.IR_FRAMES
    return lufs.response(rate, Lowpass(effects.cutoff, rate), reverb(effects), frames)


Render = Callable[[int], np.ndarray]  # the next n frames of a mono source


def apply(audio: np.ndarray, rate: int, effects: Effects = Effects()) -> np.ndarray:
    """Stereo float32 (frames, 2) of mono audio in memory through the chain, at the loudness
    asked for (measured on the audio itself: its spectrum averaged over its length)."""
    effects.check()
    mono = np.asarray(audio, dtype=np.float32)
    chain = response(effects, rate)
    frames = len(mono) + tail_frames(rate, effects)
    spectra = [lufs.spectrum(mono[i:]) for i in range(0, len(mono), lufs.SPECTRUM_FRAMES)]
    weight = chain.weight(np.mean(spectra, axis=0)) if spectra else 0.0
    estimate = chain.integrated(lufs.energies(_reader(mono * np.float32(math.sqrt(weight))),
                                              len(mono), rate))
    gain = lufs.gain_for(estimate, effects.loudness)
    quiet = _last_loud(mono[:, None], 0.0, rate // 10) + 1  # after its last sound
    blocks = list(_trimmed(_chain(_reader(mono), frames, rate, effects, gain), frames, quiet,
                           rate))
    return np.concatenate(blocks) if blocks else np.zeros((0, 2), dtype=np.float32)


def stream(play: Callable[[], Render], frames: int, quiet_from: int, rate: int,
           effects: Effects = Effects(), gain: float | Callable[[], float] = 1.0
           ) -> Iterator[np.ndarray]:
    """The chain over a mono source of `frames` frames, as stereo float32 (n, 2) blocks of at
    most BLOCK frames, the reverb's tail included and its silent end trimmed; nothing sounds
    after `quiet_from`. `play()` starts the source from its beginning; `gain` is its planned
    loudness gain (see loudness.plan), or a function giving it, called when the first block
    reaches the limiter."""
    effects.check()
    total = frames + tail_frames(rate, effects)
    yield from _trimmed(_chain(play(), total, rate, effects, gain), total, quiet_from, rate)


def tail_frames(rate: int, effects: Effects) -> int:
    """How long the chain runs on after the song for the reverb's tail."""
    return int(REVERB_TAIL_SECONDS * effects.room_size * rate) if effects.enabled else 0


def _reader(mono: np.ndarray) -> Render:
    """A source playing `mono`, then silence."""
    position = 0

    def render(frames: int) -> np.ndarray:
        nonlocal position
        block = mono[position : position + frames]
        position += frames
        if len(block) < frames:
            block = np.concatenate([block, np.zeros(frames - len(block), dtype=np.float32)])
        return block

    return render


def _chain(render: Render, frames: int, rate: int, effects: Effects,
           gain: float | Callable[[], float]) -> Iterator[np.ndarray]:
    """Low-pass, reverb, gain and limiter over the first `frames` frames of a mono source, as
    stereo (n, 2) blocks of at most BLOCK frames, `frames` in all. The reverb, the costliest,
    runs on this thread; a helper thread renders and filters the block after it and limits
    the block before it. The limiter looks ahead: it is fed as many frames more (silence)."""
    lowpass = Lowpass(effects.cutoff, rate) if effects.enabled else None
    room = reverb(effects) if effects.enabled else None
    limiter = Limiter(rate)
    skip = limiter.delay  # the limiter's first frames are the silence before the song
    total = frames + skip + limiter.CHUNK  # and it is fed that much more, to the last chunk
    level = None

    def prepare(start: int) -> np.ndarray | None:
        if start >= total:
            return None
        block = render(min(BLOCK, total - start))
        # Both effects are linear, so filtering the mono signal before the stereo reverb
        # gives the same sound as filtering after it, at half the cost.
        if lowpass is not None:
            block = lowpass(block)
        return np.repeat(block[None, :], 2, axis=0)

    def finish(block: np.ndarray) -> np.ndarray:
        nonlocal skip, level
        if level is None:
            level = np.float32(gain() if callable(gain) else gain)
        block *= level
        out = limiter(block)
        out, skip = out[:, skip:], max(0, skip - out.shape[1])
        return out.T

    with ThreadPoolExecutor(max_workers=1) as helper:  # one worker: its tasks run in order
        ready = helper.submit(prepare, 0)
        limited = None
        left = frames
        for start in range(0, total, BLOCK):
            block = ready.result()
            ready = helper.submit(prepare, start + BLOCK)
            if room is not None:
                block = room(block, rate, reset=False)
            following = helper.submit(finish, block)
            if limited is not None and left > 0:
                out = limited.result()[:left]
                left -= len(out)
                yield out
            limited = following
        ready.result()
        if limited is not None and left > 0:
            yield limited.result()[:left]


def _trimmed(blocks: Iterator[np.ndarray], frames: int, quiet_from: int, rate: int,
             floor_db: float = -70.0) -> Iterator[np.ndarray]:
    """The blocks of a stream of `frames` frames with the inaudible end of the reverb tail cut,
    where a search backwards from the end in steps of 0.1 s would cut it.

    What follows the last sound above the floor is held back until more sound comes; it never
    grows past REVERB_TAIL_SECONDS: then either notes are still to come (what is held is played)
    or nothing has sounded since the source fell silent at `quiet_from`, and the tail has been
    under the floor that long, so the stream stops.
    """
    floor, step = 10 ** (floor_db / 20), rate // 10
    hold = int(REVERB_TAIL_SECONDS * rate)
    held: list[np.ndarray] = []
    held_frames = position = 0  # frames held back; frames seen
    last = -1  # the last frame above the floor
    try:
        for block in blocks:
            position += len(block)
            loud = _last_loud(block, floor, step)
            if loud >= 0:
                last = position - len(block) + loud
                yield from held
                yield block[: loud + 1]
                held, held_frames = [], 0
                block = block[loud + 1 :]
            if len(block):
                held.append(block)
                held_frames += len(block)
            if held_frames > hold:
                if position - held_frames >= quiet_from:
                    break
                yield from held
                held, held_frames = [], 0
    finally:
        if hasattr(blocks, "close"):
            blocks.close()  # stop the chain's helper thread now, not when collected
    end = 0 if last < 0 else frames - (frames - 1 - last) // step * step
    keep = end - (position - held_frames)  # held frames that the trim keeps
    for block in held:
        if keep <= 0:
            break
        yield block[:keep]
        keep -= len(block)


def _last_loud(block: np.ndarray, floor: float, step: int) -> int:
    """Index of the last frame with a sample above `floor`, or -1; searched from the end."""
    end = len(block)
    while end > 0:
        chunk = np.abs(block[max(end - step, 0) : end])
        if chunk.max() > floor:
            return max(end - step, 0) + int(np.flatnonzero(chunk.max(axis=1) > floor)[-1])
        end -= step
    return -1


class Stream:
    """The same chain for live play, block by block: the reverb tail carries from one block to
    the next, and `gain` is the level a song of the player's touch gets (audio.live_gain).
    The limiter's look-ahead delays the sound by `delay` frames (6.5 ms), which the player
    of the piano makes up by striking that much earlier; every block keeps its length."""

    def __init__(self, rate: int, effects: Effects = Effects(), gain: float = 1.0):
        self.rate = rate
        self.effects = effects.check()
        self.lowpass = Lowpass(effects.cutoff, rate) if effects.enabled else None
        self.reverb = reverb(effects) if effects.enabled else None
        self.limiter = Limiter(rate)
        self.delay = self.limiter.delay  # frames the sound comes out late
        self.gain = np.float32(gain)
        self.limit = LIMIT

    def process(self, mono: np.ndarray) -> np.ndarray:
        """Stereo float32 (frames, 2) for the next block of mono audio."""
        block = np.asarray(mono, dtype=np.float32)
        if self.lowpass is not None:
            block = self.lowpass(block)
        stereo = np.repeat(block[None, :], 2, axis=0)
        if self.reverb is not None:
            stereo = self.reverb(stereo, self.rate, reset=False)
        stereo *= self.gain
        out = self.limiter(stereo)
        if out.shape[1] < len(block):  # a block not a whole number of the limiter's chunks
            out = np.concatenate([np.zeros((2, len(block) - out.shape[1]), np.float32), out],
                                 axis=1)
        return out.T


def db(value: float) -> float:
    return 20 * math.log10(max(value, 1e-12))
