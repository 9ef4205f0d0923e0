"""The studio chain (SPEC section 6): pedalboard's reverb and low-pass, then a limiter.

Peaks never pass -1 dBFS: pedalboard's Limiter does the musical work, and the ceiling
guarantees it even on the rare transient the limiter lets through: a gain over the whole song
where the song is in memory (apply), a hard clip where it streams (stream, Stream).

A song goes through the chain block by block, the piano, the low-pass and the limiter on a
second thread working on the blocks after and before the one the reverb is making (pedalboard
releases the GIL), so two cores share the work; streaming with reset=False gives exactly the
samples of one call over the whole song, and memory does not grow with the song's length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
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


Render = Callable[[int], np.ndarray]  # the next n frames of a mono source

# The limiter's last stage clips at full scale, so its output peaks at 1.0 in any song loud
# enough to drive it there (-1.5 dBFS in): this gain brings that peak to the ceiling, the very
# gain `apply` finds over a whole song. Where the song streams (`stream`, `Stream`) no block
# sees the ones after it, so this is the ceiling there, with a hard clip as a guard.
FULL_SCALE_GAIN = _ceiling_gain(np.ones(1, dtype=np.float32))
LIMIT = np.float32(10 ** (CEILING_DB / 20))


def apply(audio: np.ndarray, rate: int, effects: Effects = Effects()) -> np.ndarray:
    """Stereo float32 (frames, 2) audio with the chain applied; mono input is spread to stereo."""
    effects.check()
    mono = np.asarray(audio, dtype=np.float32)
    if not effects.enabled:
        return ceiling(np.stack([mono, mono], axis=1))
    frames = len(mono) + tail_frames(rate, effects)
    quiet = _last_loud(mono[:, None], 0.0, rate // 10) + 1  # after its last sound
    blocks = list(_trimmed(_chain(_reader(mono), frames, rate, effects), frames, quiet, rate))
    audio = np.concatenate(blocks) if blocks else np.zeros((0, 2), dtype=np.float32)
    gain = _ceiling_gain(audio)
    if gain is not None:
        audio *= gain  # in place: the concatenation is ours, and a copy costs as much again
    return audio


def stream(play: Callable[[], Render], frames: int, quiet_from: int, rate: int,
           effects: Effects = Effects()) -> Iterator[np.ndarray]:
    """The chain over a mono source of `frames` frames, as stereo float32 (n, 2) blocks of at
    most BLOCK frames, the reverb's tail included and its silent end trimmed as apply does;
    nothing sounds after `quiet_from`. `play()` starts the source from its beginning.

    The ceiling cannot be a gain found over the whole song here: it is the gain for the
    limiter's full-scale peak, and a hard clip at -1 dBFS; without effects the source is
    played twice, once for its peak, and scaled as apply scales it.
    """
    effects.check()
    if not effects.enabled:
        render, peak = play(), 0.0
        for start in range(0, frames, BLOCK):
            block = render(min(BLOCK, frames - start))
            peak = max(peak, float(np.abs(block).max()))
        gain = _ceiling_gain(np.array([peak], dtype=np.float32))
        render = play()
        for start in range(0, frames, BLOCK):
            block = render(min(BLOCK, frames - start))
            if gain is not None:
                block = block * gain
            yield np.stack([block, block], axis=1)
        return
    # A song too quiet to drive the limiter to full scale comes out up to 1 dB quieter than
    # apply makes it (see FULL_SCALE_GAIN).
    total = frames + tail_frames(rate, effects)
    for block in _trimmed(_chain(play(), total, rate, effects), total, quiet_from, rate):
        block = block * FULL_SCALE_GAIN
        yield np.clip(block, -LIMIT, LIMIT, out=block)


def tail_frames(rate: int, effects: Effects) -> int:
    """How long the chain runs on after the song for the reverb's tail."""
    return int(REVERB_TAIL_SECONDS * effects.room_size * rate)


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


def _chain(render: Render, frames: int, rate: int, effects: Effects) -> Iterator[np.ndarray]:
    """Low-pass, reverb and limiter over the first `frames` frames of a mono source, as
    stereo (n, 2) blocks of BLOCK frames. The reverb, the costliest, runs on this thread; a
    helper thread renders and filters the block after it and limits the block before it."""
    lowpass, reverb, limiter = _lowpass(effects), _reverb(effects), _limiter()

    def prepare(start: int) -> np.ndarray | None:
        if start >= frames:
            return None
        block = render(min(BLOCK, frames - start))
        # Both effects are linear, so filtering the mono signal before the stereo reverb
        # gives the same sound as filtering after it, at half the cost.
        return np.repeat(lowpass(block[None, :], rate, reset=False), 2, axis=0)

    with ThreadPoolExecutor(max_workers=1) as helper:  # one worker: its tasks run in order
        ready = helper.submit(prepare, 0)
        limited = None
        for start in range(0, frames, BLOCK):
            block = ready.result()
            ready = helper.submit(prepare, start + BLOCK)
            following = helper.submit(limiter, reverb(block, rate, reset=False), rate,
                                      reset=False)
            if limited is not None:
                yield limited.result().T
            limited = following
        ready.result()
        if limited is not None:
            yield limited.result().T


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
    the next. As in `stream`, the limiter's full-scale peak is brought to the ceiling by a fixed
    gain (no block can see the ones after it), and a hard clip at the ceiling guards."""

    def __init__(self, rate: int, effects: Effects = Effects()):
        self.rate = rate
        self.effects = effects.check()
        self.lowpass = _lowpass(effects)
        self.room = _room(effects)
        self.limit = LIMIT

    def process(self, mono: np.ndarray) -> np.ndarray:
        """Stereo float32 (frames, 2) for the next block of mono audio."""
        block = np.asarray(mono, dtype=np.float32)[None, :]
        if self.effects.enabled:
            block = self.lowpass(block, self.rate, reset=False)
            stereo = self.room(np.repeat(block, 2, axis=0), self.rate, reset=False).T
            stereo *= FULL_SCALE_GAIN  # the limiter's output reaches full scale
        else:
            stereo = np.repeat(block, 2, axis=0).T
        return np.clip(stereo, -self.limit, self.limit)


def db(value: float) -> float:
    return 20 * math.log10(max(value, 1e-12))
