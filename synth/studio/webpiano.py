"""The numbers the browser's Web Audio piano (static/piano.js) plays by, computed from the
Python piano and the live chain, so that the two cannot drift apart: each key's velocity gain
and brightness shelf, the damper times, the release sounds' levels, the 24 dB/octave low-pass
as IIR coefficients fitted to pedalboard's ladder, the reverb as an impulse response rendered
by pedalboard's own reverb, and the level of `synth live` (audio.live_gain)."""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np

from synth import piano
from synth.effects import LIMIT_DB, REVERB_TAIL_SECONDS, Effects, _Lowpass, _reverb

FIT_FRAMES = 512  # the ladder's impulse response is below 1e-7 well before this at 500 Hz+


def _ladder(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A four-stage ladder's transfer function (b, a in powers of 1/z): four one-poles
    (b0 + b1/z) / (1 - a1/z), gain g, the fourth stage's output fed back by k, one sample late
    (JUCE's LadderFilter, which pedalboard wraps, at resonance 0)."""
    from numpy.polynomial import polynomial

    a1, b0, b1, k, g = params
    stage = polynomial.polypow([b0, b1], 4)
    return g * stage, polynomial.polyadd(polynomial.polypow([1.0, -a1], 4),
                                         k * np.concatenate([[0.0], stage]))


@lru_cache(maxsize=16)
def lowpass(cutoff: float, rate: int = piano.RATE) -> dict:
    """The chain's low-pass as one IIR filter (Web Audio's IIRFilterNode): the ladder's
    structure fitted to the impulse response of synth's own low-pass (effects._Lowpass)."""
    from scipy.optimize import least_squares
    from scipy.signal import lfilter

    impulse = np.zeros(2 * FIT_FRAMES, dtype=np.float32)
    impulse[FIT_FRAMES] = 1.0  # after a run-in, as in a song
    measured = _Lowpass(cutoff, rate)(impulse)[FIT_FRAMES:].astype(np.float64)
    unit = np.zeros(FIT_FRAMES)
    unit[0] = 1.0
    pole = math.exp(-2 * math.pi * cutoff / rate)
    start = [pole, (1 - pole) / 1.3, (1 - pole) * 0.3 / 1.3, 0.4, 1.2]  # JUCE's constants
    fit = least_squares(lambda p: lfilter(*_ladder(p), unit) - measured, start)
    b, a = _ladder(fit.x)
    if np.abs(np.roots(a)).max() >= 1.0:  # never hand the browser an unstable filter
        raise ValueError(f"the low-pass at {cutoff:g} Hz did not fit a stable filter")
    error = float(np.abs(lfilter(b, a, unit) - measured).max())
    return {"cutoff": cutoff, "feedforward": b.tolist(), "feedback": a.tolist(),
            "error": error}


def _highpass(hz: float, rate: int = piano.RATE) -> dict:
    """pedalboard's first-order HighpassFilter (the velocity shelf's) as IIR coefficients:
    the bilinear transform, prewarped."""
    w = math.tan(math.pi * hz / rate)
    n = 1 / (1 + w)
    return {"feedforward": [n, -n], "feedback": [1.0, (w - 1) * n]}


@lru_cache(maxsize=16)
def impulse(room_size: float, wet: float, rate: int = piano.RATE) -> bytes:
    """The chain's reverb (dry path included) as a stereo float WAV: an impulse through
    pedalboard's Reverb with the settings of `Effects(room_size, wet)`, as the live chain
    feeds it (the same mono signal on both channels)."""
    import soundfile

    effects = Effects(room_size=room_size, wet=wet).check()
    frames = int(REVERB_TAIL_SECONDS * rate)
    click = np.zeros((2, frames), dtype=np.float32)
    click[:, 0] = 1.0
    response = _reverb(effects)(click, rate)
    out = io.BytesIO()
    soundfile.write(out, response.T, rate, subtype="FLOAT", format="WAV")
    return out.getvalue()


@lru_cache(maxsize=16)
def settings(effects: Effects = Effects()) -> dict:
    """Everything piano.js needs besides the sounds, for the chain `effects`."""
    from synth.audio import live_gain

    effects = effects.check()
    keys = range(piano.LOWEST, piano.HIGHEST + 1)
    velocities = range(128)  # index = MIDI velocity; 0 is played as 1, as the piano clips
    gains = [piano.note_gain(max(v, 1)) for v in velocities]
    shelves = []
    for v, gain in zip(velocities, gains):
        shelf = piano.brightness(max(v, 1)) - 1.0
        shelves.append(0.0 if abs(shelf) < 1e-3 else gain * shelf)  # as Voices.key
    return {
        "rate": piano.RATE,
        "samples": [k for k in keys if (piano.SAMPLES / f"{k}.flac").is_file()],
        "releases": [k for k in keys if (piano.SAMPLES / "release" / f"{k}.flac").is_file()],
        "velocity": {"gain": gains, "shelf": shelves, "default": piano.DEFAULT_VELOCITY},
        "shelf": {**_highpass(piano.BRIGHT_HZ), "seconds": piano.BRIGHT_SECONDS},
        "damper": {str(k): piano.damper_frames(k) / piano.RATE for k in keys},
        "release": {"level": piano.RELEASE_LEVEL, "fade": piano.RELEASE_FADE,
                    "floor": piano.RELEASE_FLOOR, "seconds": piano.TAIL_SECONDS},
        "effects": {"enabled": effects.enabled, "room_size": effects.room_size,
                    "wet": effects.wet},
        "lowpass": lowpass(effects.cutoff) if effects.enabled else None,
        "reverb": (f"/api/piano/reverb?room_size={effects.room_size:g}&wet={effects.wet:g}"
                   if effects.enabled else None),
        "level": live_gain(effects),
        "limit_db": LIMIT_DB,
    }
