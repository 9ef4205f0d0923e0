"""Loudness (ITU-R BS.1770, the measure of pyloudnorm and of streaming services), planned before
a song is rendered, so that it streams block by block at its level with flat memory.

Integrated loudness is a property of the whole song, and the chain has to know its gain before
the first block leaves. The plan: the chain before the limiter is linear (piano, low-pass,
reverb), so a key's share of the loudness is its dry energy times how much the chain and the
K-weighting pass of its spectrum. A first pass renders the dry piano alone (cheap: no filter,
no reverb) with every key weighted so, keeps one number per 100 ms, spreads those over time as
the reverb spreads energy, and gates them as BS.1770 does. The gain that brings that estimate
to the target is the song's gain; the limiter then only catches the last peaks.
NumPy only: the chain's plugins are handed in (effects.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

TARGET = -16.0  # LUFS, integrated: a listening level (streaming services play at -14 to -16)
SUB_BLOCK = 0.1  # seconds: BS.1770's 400 ms blocks overlap by 75%, so a 100 ms step
SPECTRUM_FRAMES = 1 << 12  # a key's spectrum: its first 93 ms, where its loudness is (11 Hz)
IR_FRAMES = 1 << 17  # the reverb's impulse response, 3 s: its tail at room size 1 ...
SHORT_IR_FRAMES = 1 << 15  # ... 0.74 s up to room size 0.5 (all but 1e-4 of its energy)


def _biquad_power(b: tuple, a: tuple, freqs: np.ndarray, rate: int) -> np.ndarray:
    z = np.exp(-1j * 2 * np.pi * freqs / rate)
    return np.abs(np.polyval(b[::-1], z) / np.polyval(a[::-1], z)) ** 2


def k_weighting(freqs: np.ndarray, rate: int) -> np.ndarray:
    """|K(f)|^2, BS.1770's K-weighting (a high shelf of +4 dB from 1.5 kHz, a high-pass at
    38 Hz), designed for `rate` as pyloudnorm designs it."""
    gain, q, fc = 4.0, 1 / math.sqrt(2), 1500.0
    big_a, w0 = 10 ** (gain / 40), 2 * math.pi * fc / rate
    alpha, cos = math.sin(w0) / (2 * q), math.cos(w0)
    root = 2 * math.sqrt(big_a) * alpha
    shelf = ((big_a * ((big_a + 1) + (big_a - 1) * cos + root),
              -2 * big_a * ((big_a - 1) + (big_a + 1) * cos),
              big_a * ((big_a + 1) + (big_a - 1) * cos - root)),
             ((big_a + 1) - (big_a - 1) * cos + root, 2 * ((big_a - 1) - (big_a + 1) * cos),
              (big_a + 1) - (big_a - 1) * cos - root))
    q, fc = 0.5, 38.0
    w0 = 2 * math.pi * fc / rate
    alpha, cos = math.sin(w0) / (2 * q), math.cos(w0)
    high_pass = (((1 + cos) / 2, -(1 + cos), (1 + cos) / 2), (1 + alpha, -2 * cos, 1 - alpha))
    return _biquad_power(*shelf, freqs, rate) * _biquad_power(*high_pass, freqs, rate)


def spectrum(audio: np.ndarray) -> np.ndarray:
    """Power spectrum of the start of a sound on the grid every estimate uses."""
    head = np.zeros(SPECTRUM_FRAMES, dtype=np.float32)
    part = np.asarray(audio[:SPECTRUM_FRAMES], dtype=np.float32)
    head[: len(part)] = part
    return np.abs(np.fft.rfft(head * _WINDOW)) ** 2


_WINDOW = np.hanning(SPECTRUM_FRAMES).astype(np.float32)


@dataclass(frozen=True)
class Response:
    """What the chain before the limiter does to energy, as the loudness meter hears it:
    `power` on the spectrum grid (K-weighting, low-pass, reverb, both channels summed), and
    `spread`, the share of a sound's energy that the reverb moves 0, 1, 2 ... 100 ms steps
    later."""

    power: np.ndarray
    spread: np.ndarray
    rate: int

    def weight(self, spectrum: np.ndarray) -> float:
        """How much a sound of this spectrum counts per unit of dry energy."""
        total = float(spectrum.sum())
        return float((spectrum * self.power).sum() / total) if total > 0 else 0.0

    def integrated(self, energies: np.ndarray) -> float:
        """The gated loudness (LUFS) of the output, from the weighted dry energy of each
        100 ms step (sums of squares)."""
        if not len(energies):
            return -math.inf
        if len(self.spread) > 1:  # the reverb's tail rings on after the last step
            energies = np.convolve(energies, self.spread)
        return gated(energies, int(round(SUB_BLOCK * self.rate)))


def gated(energies: np.ndarray, step: int) -> float:
    """BS.1770-4 integrated loudness from the sums of squares of consecutive `step`-frame
    sub-blocks (channels summed): 400 ms blocks every 100 ms, gated at -70 LUFS absolute and
    10 LU below the mean of the blocks above it. -inf for silence."""
    if len(energies) < 4:
        energies = np.concatenate([energies, np.zeros(4 - len(energies))])
    blocks = np.convolve(energies, np.ones(4), "valid") / (4 * step)
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10 * np.log10(blocks)
    kept = blocks[loud > -70.0]
    if not len(kept):
        return -math.inf
    relative = -0.691 + 10 * math.log10(kept.mean()) - 10.0
    kept = blocks[(loud > -70.0) & (loud > relative)]
    return -0.691 + 10 * math.log10(kept.mean())


def energies(render: Callable[[int], np.ndarray], frames: int, rate: int,
             chunk: int = 1 << 16) -> np.ndarray:
    """Sums of squares of each 100 ms step of a mono source's first `frames` frames, taken
    `chunk` frames at a time (memory: one number per step)."""
    step = int(round(SUB_BLOCK * rate))
    chunk -= chunk % step
    out = []
    for start in range(0, frames, chunk):
        block = render(min(chunk, frames - start))
        whole = len(block) - len(block) % step
        rows = block[:whole].reshape(-1, step)
        out.append(np.einsum("ij,ij->i", rows, rows).astype(np.float64))
        if whole < len(block):
            out.append(np.array([np.dot(block[whole:], block[whole:])], dtype=np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def response(rate: int, lowpass=None, reverb=None, ir_frames: int = IR_FRAMES) -> Response:
    """The Response of a chain, measured from its own (fresh) pedalboard plugins' impulse
    responses, so it is exact for the filters that run; no plugins: the dry piano, the same
    signal on both channels."""
    freqs = np.fft.rfftfreq(SPECTRUM_FRAMES, 1 / rate)
    power = k_weighting(freqs, rate)
    if lowpass is not None:
        impulse = np.zeros(SPECTRUM_FRAMES, dtype=np.float32)
        impulse[0] = 1.0
        power = power * _power(lowpass(impulse), SPECTRUM_FRAMES)
    if reverb is None:
        return Response(2.0 * power, np.ones(1), rate)
    impulse = np.zeros((2, ir_frames), dtype=np.float32)
    impulse[:, 0] = 1.0
    ir = reverb(impulse, rate)
    power = power * (_power(ir[0], ir_frames) + _power(ir[1], ir_frames))
    step = int(round(SUB_BLOCK * rate))
    whole = ir_frames - ir_frames % step
    spread = np.square(ir[:, :whole].astype(np.float64)).sum(axis=0).reshape(-1, step).sum(axis=1)
    return Response(power, spread / spread.sum(), rate)


def _power(ir: np.ndarray, frames: int) -> np.ndarray:
    """|H(f)|^2 of an impulse response, on the SPECTRUM_FRAMES grid (averaged down)."""
    power = np.abs(np.fft.rfft(ir.astype(np.float64), frames)) ** 2
    factor = frames // SPECTRUM_FRAMES
    if factor == 1:
        return power
    grid = power[: SPECTRUM_FRAMES // 2 * factor].reshape(-1, factor).mean(axis=1)
    return np.append(grid, power[-1])


def gain_for(estimate: float, target: float) -> float:
    """The linear gain that brings `estimate` LUFS to `target` (1 for silence)."""
    return 1.0 if not math.isfinite(estimate) else 10 ** ((target - estimate) / 20)


def weights(spectra: dict[int, np.ndarray], chain: Response) -> dict[int, float]:
    """Each key's weight for the first pass."""
    return {key: chain.weight(value) for key, value in spectra.items()}


def plan(keys: Iterable[int], spectrum_of: Callable[[int], np.ndarray], chain: Response,
         weighted_render: Callable[[dict[int, float]], Callable[[int], np.ndarray]],
         frames: int) -> float:
    """The estimated integrated loudness (LUFS) of a song through `chain`: the first pass."""
    key_weights = weights({key: spectrum_of(key) for key in set(keys)}, chain)
    return chain.integrated(energies(weighted_render(key_weights), frames, chain.rate))
