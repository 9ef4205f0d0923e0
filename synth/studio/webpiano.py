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

from synth.sound import piano
from synth.sound.effects import LIMIT_DB, REVERB_TAIL_SECONDS, Effects, Lowpass, reverb
from synth.errors import SynthError

FIT_FRAMES = 512  # at least: the ladder's impulse response, below 1e-7 by then at 500 Hz+
MAX_ERROR = 0.01  # the fitted filter's impulse response against the ladder's, at most
ORDER = 5  # JUCE's ladder (pedalboard's): four one-poles, their output fed back a sample late


def _filter(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """x through the IIR filter b/a (direct form, a[0] = 1): a few hundred samples only."""
    y = np.zeros(len(x))
    for n in range(len(x)):
        past = min(n, len(a) - 1)
        y[n] = (np.dot(b[: min(n, len(b) - 1) + 1], x[n :: -1][: len(b)])
                - np.dot(a[1 : past + 1], y[n - 1 :: -1][:past] if n else []))
    return y


@lru_cache(maxsize=16)
def lowpass(cutoff: float, rate: int = piano.RATE) -> dict:
    """The chain's low-pass as one IIR filter (Web Audio's IIRFilterNode): five poles and four
    zeros fitted (Prony's method, least squares in NumPy) to the impulse response of synth's
    own low-pass (effects.Lowpass), which has that structure."""
    frames = max(FIT_FRAMES, int(4 * rate / cutoff))  # lower cutoffs ring longer
    impulse = np.zeros(2 * frames, dtype=np.float32)
    impulse[frames] = 1.0  # after a run-in, as in a song
    h = Lowpass(cutoff, rate)(impulse)[frames:].astype(np.float64)
    # Past the zeros, h[n] + a1 h[n-1] + ... + a5 h[n-5] = 0: the poles by least squares ...
    rows = np.stack([h[ORDER - k : len(h) - k] for k in range(1, ORDER + 1)], axis=1)
    a = np.concatenate([[1.0], np.linalg.lstsq(rows, -h[ORDER:], rcond=None)[0]])
    # ... and the zeros from the first samples.
    b = np.array([np.dot(a[: n + 1], h[n :: -1]) for n in range(ORDER)])
    unit = np.zeros(frames)
    unit[0] = 1.0
    error = float(np.abs(_filter(b, a, unit) - h).max() / np.abs(h).max())  # relative
    # Far down (under about 100 Hz) the poles crowd 1 and the fit fails: never hand the
    # browser an unstable or wrong filter.
    if np.abs(np.roots(a)).max() >= 1.0 or not error < MAX_ERROR:
        raise SynthError(f"cutoff {cutoff:g} Hz: the browser's low-pass cannot follow it "
                         f"(expected 100-20000 Hz)")
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
    response = reverb(effects)(click, rate)
    out = io.BytesIO()
    soundfile.write(out, response.T, rate, subtype="FLOAT", format="WAV")
    return out.getvalue()


@lru_cache(maxsize=16)
def settings(effects: Effects = Effects()) -> dict:
    """Everything piano.js needs besides the sounds, for the chain `effects`."""
    from synth.sound.render import live_gain

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
