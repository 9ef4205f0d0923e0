"""The built-in sampled piano (SPEC sections 2 and 6): NumPy and soundfile only.

Each pitch token strikes its recorded sample at the start of its step, the key is held until
the next token starts, then released: a short raised-cosine fade (the damper) with no click.
Release tails overlap freely. Velocity scales loudness; humanize adds a sloppy pianist's
timing and velocity wobble.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.errors import SynthError
from synth.notes import REST, class_to_midi

RATE = 44_100
SAMPLES = Path(__file__).parent / "assets" / "piano"
DEFAULT_VELOCITY = 90
RELEASE_SECONDS = 0.25  # damper fall time after the key is released
GAIN = 3.0  # the samples peak near 0.13 at velocity 100; this puts one note near -8 dBFS


@dataclass(frozen=True)
class Performance:
    """How the notes are played."""

    bpm: float = 150.0
    humanize: float = 0.0  # 0 = machine-exact; 1 = about 20 ms timing and 15 velocity wobble
    seed: int | None = None


@functools.lru_cache(maxsize=1)
def samples() -> dict[int, np.ndarray]:
    """The recorded notes, MIDI number -> mono float32 at 44.1 kHz (loaded once)."""
    import soundfile

    loaded = {}
    for midi in range(48, 72):
        path = SAMPLES / f"{midi}.flac"
        try:
            audio, rate = soundfile.read(path, dtype="float32")
        except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, OSError
            raise SynthError(f"{path}: the piano sample cannot be read ({exc}); "
                             "reinstall synth") from None
        if rate != RATE:
            raise SynthError(f"{path}: sample rate {rate}, expected {RATE}; reinstall synth")
        loaded[midi] = audio
    return loaded


def _release_curve(length: int) -> np.ndarray:
    return (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, length))).astype(np.float32)


def onsets(tokens: Sequence[int], performance: Performance) -> np.ndarray:
    """Start time in samples of every step (humanized if asked)."""
    step = 60.0 / performance.bpm
    times = np.arange(len(tokens)) * step
    if performance.humanize > 0:
        rng = np.random.default_rng(performance.seed)
        jitter = rng.normal(0.0, 0.010 * performance.humanize, len(tokens))
        times = np.maximum(times + np.clip(jitter, -0.03, 0.03), 0.0)
    return np.round(times * RATE).astype(np.int64)


def render_notes(tokens: Sequence[int], performance: Performance = Performance(),
                 velocities: Sequence[int] | None = None) -> np.ndarray:
    """Dry piano audio of a song: mono float32, ending when the last release has rung out."""
    bank = samples()
    step = int(round(60.0 / performance.bpm * RATE))
    release = int(RELEASE_SECONDS * RATE)
    starts = onsets(tokens, performance)
    out = np.zeros(len(tokens) * step + release + int(0.05 * RATE), dtype=np.float32)
    if velocities is None:
        velocities = [DEFAULT_VELOCITY] * len(tokens)
    velocities = np.asarray(velocities, dtype=np.float64)
    if performance.humanize > 0:
        rng = np.random.default_rng(None if performance.seed is None else performance.seed + 1)
        velocities = velocities + rng.normal(0.0, 7.0 * performance.humanize, len(velocities))
    velocities = np.clip(velocities, 1, 127)
    curve = _release_curve(release)
    for index, token in enumerate(tokens):
        if token == REST:
            continue
        sample = bank[class_to_midi(int(token))]
        end_of_step = (index + 1) * step  # the next token starts: the key comes up
        hold = max(end_of_step - starts[index], 1)
        note = sample[: hold + release]
        gain = GAIN * (velocities[index] / 100.0) ** 1.6
        start = starts[index]
        segment = out[start : start + len(note)]
        if len(note) > hold:
            segment[:hold] += note[:hold] * gain
            tail = note[hold:]
            segment[hold:] += tail * curve[: len(tail)] * gain
        else:
            segment += note * gain
    return out
