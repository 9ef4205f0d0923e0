"""The player's beat, from the onsets of a phrase (SPEC section 4, `synth live`). NumPy only.

The method: every candidate tempo on a fine grid (30-300 bpm, 0.5% apart) reads each
inter-onset interval as a whole number of quarter beats; the phrase's onsets then lie on a
quarter-beat grid, and a least-squares line through (grid position, onset time) gives that
reading's exact tempo and phase. Each reading is scored by how likely a melody is to move in
those intervals (mostly whole beats, then half beats, two beats and dotted values: this is what
tells quarter notes at 80 bpm from half notes at 160), how far the onsets stray from the
fitted grid (Gaussian, 30 ms: human timing), and a gentle preference for 60-180 bpm. The best
reading wins. The first onset is taken to be on a beat, unless most onsets fall half or a
quarter of a beat off it (a pickup), and the beat moves there. Some phrases read equally well
at two tempi (quarter and half notes at 160 bpm are eighths and quarters at 80): the more of
the phrase moves in whole beats, the surer the reading.

With fewer than three onsets there is no interval to compare with another: the tempo is the
previous phrase's if there was one, else the default 150 bpm, and the first onset is a beat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synth.music.events import QUARTERS_PER_BEAT as QUARTERS
from synth.music.midi import CHORD_SECONDS as CHORD
from synth.music.songs import DEFAULT_BPM

SLOWEST, FASTEST = 30.0, 300.0  # candidate tempi
STEP = 1.005  # candidates 0.5% apart: a 32-quarter interval still reads right between two
USUAL = (60.0, 180.0)  # no preference inside, a log-Gaussian fall-off outside
USUAL_WIDTH = 0.35  # octaves: 47 and 230 bpm are one standard deviation out
TIMING = 0.03  # seconds: how far a human's onsets stray from the grid (standard deviation)
MIN_ONSETS = 3
RECENT = 64  # only the last onsets count: the player's tempo now, and a bounded cost

# How often an inter-onset interval of k quarter beats occurs in a melody: a rough profile of
# folk tunes and chorales. Unlisted intervals share the small remainder.
INTERVALS = {4: 0.40, 2: 0.22, 8: 0.12, 6: 0.06, 1: 0.04, 12: 0.04, 3: 0.03, 16: 0.03}
OTHER = 0.002
_LOG_INTERVAL = np.log(np.array([INTERVALS.get(k, OTHER) for k in range(0, 129)]))
_LOG_OTHER = math.log(OTHER)

PHRASE, PREVIOUS, DEFAULT, FIXED = "phrase", "previous", "default", "fixed"


@dataclass(frozen=True)
class Beat:
    """A beat grid: `bpm`, and `time` (on the onsets' clock) where one beat falls.
    `source` says where the tempo came from: the phrase, the previous phrase, the default,
    or fixed by the caller (--bpm)."""

    bpm: float
    time: float
    source: str = PHRASE

    @property
    def period(self) -> float:
        return 60.0 / self.bpm

    def next_beat(self, after: float, margin: float = 0.0) -> float:
        """The first beat after `after`, or the one after it if that is under `margin` away."""
        count = math.floor((after - self.time) / self.period) + 1
        beat = self.time + count * self.period
        return beat + self.period if beat - after < margin else beat

    def before(self, t: float) -> float:
        """The last beat at or before `t` (a hair's tolerance: an onset on a beat counts)."""
        return self.time + math.floor((t - self.time) / self.period + 1e-6) * self.period


def distinct_onsets(onsets: Sequence[float], chord: float = CHORD) -> np.ndarray:
    """Onsets in order, keys struck within `chord` seconds of a kept onset left out."""
    kept: list[float] = []
    for t in sorted(float(t) for t in onsets):
        if not kept or t - kept[-1] > chord:
            kept.append(t)
    return np.asarray(kept, dtype=np.float64)


def estimate(onsets: Sequence[float], previous: float | None = None,
             chord: float = CHORD) -> Beat:
    """The beat of a phrase from its onsets (seconds, any clock). With fewer than three
    distinct onsets: `previous` (the last phrase's tempo) if given, else DEFAULT_BPM."""
    times = distinct_onsets(onsets, chord)[-RECENT:]
    if len(times) < MIN_ONSETS:
        first = float(times[0]) if len(times) else 0.0
        return Beat(previous, first, PREVIOUS) if previous else Beat(DEFAULT_BPM, first, DEFAULT)
    quarters = 60.0 / QUARTERS / np.geomspace(SLOWEST, FASTEST,
                                              int(math.log(FASTEST / SLOWEST, STEP)) + 1)
    positions = _positions(times, quarters)
    slope, phase, misfit = _fit(times, positions)
    steps = np.diff(positions, axis=1)
    score = (_interval_log_prob(steps).sum(axis=1) - misfit / (2 * TIMING ** 2)
             + _tempo_log_prior(60.0 / QUARTERS / slope))
    best = int(np.argmax(score))
    return _beat(positions[best], float(slope[best]), float(phase[best]), PHRASE)


def fixed(onsets: Sequence[float], bpm: float, chord: float = CHORD) -> Beat:
    """The grid of a tempo the caller fixed, its phase taken from the phrase's onsets."""
    times = distinct_onsets(onsets, chord)[-RECENT:]
    if len(times) < 2:
        return Beat(bpm, float(times[0]) if len(times) else 0.0, FIXED)
    quarter = 60.0 / QUARTERS / bpm
    positions = _positions(times, np.array([quarter]))[0]
    return _beat(positions, quarter, float(np.mean(times - quarter * positions)), FIXED)


def _positions(times: np.ndarray, quarters: np.ndarray) -> np.ndarray:
    """Grid positions (quarter beats from the first onset) of the onsets, one row per
    candidate quarter-beat period: each interval read as the nearest whole number, at least 1."""
    steps = np.maximum(np.rint(np.diff(times)[None, :] / quarters[:, None]), 1.0)
    return np.concatenate([np.zeros((len(quarters), 1)), np.cumsum(steps, axis=1)], axis=1)


def _fit(times: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line time = phase + slope * position for each row: (slope, phase,
    sum of squared residuals in seconds^2)."""
    q = positions - positions.mean(axis=1, keepdims=True)
    t = times - times.mean()
    slope = (q @ t) / np.einsum("ij,ij->i", q, q)
    phase = times.mean() - slope * positions.mean(axis=1)
    residual = times[None, :] - phase[:, None] - slope[:, None] * positions
    return slope, phase, np.einsum("ij,ij->i", residual, residual)


def _interval_log_prob(steps: np.ndarray) -> np.ndarray:
    index = steps.astype(np.int64)
    inside = index < len(_LOG_INTERVAL)
    return np.where(inside, _LOG_INTERVAL[np.minimum(index, len(_LOG_INTERVAL) - 1)], _LOG_OTHER)


def _tempo_log_prior(bpm: np.ndarray) -> np.ndarray:
    low, high = USUAL
    octaves = np.maximum(np.log2(low / bpm), 0.0) + np.maximum(np.log2(bpm / high), 0.0)
    return -0.5 * (octaves / USUAL_WIDTH) ** 2


def _beat(positions: np.ndarray, quarter: float, phase: float, source: str) -> Beat:
    """The beat of a fitted grid: the first onset's grid point, moved by a quarter, half or
    three quarters of a beat when more onsets fall on beats that way (a pickup)."""
    counts = [np.count_nonzero((positions + shift) % QUARTERS == 0) for shift in range(QUARTERS)]
    shift = max(range(QUARTERS), key=lambda s: (counts[s], s == 0))
    return Beat(60.0 / QUARTERS / quarter, phase + (QUARTERS - shift) % QUARTERS * quarter, source)
