"""Render the built-in piano samples (C3-B4, one per semitone) from the FluidR3_GM SoundFont.

Needs Debian's fluidsynth and fluid-soundfont-gm (apt-get install fluidsynth fluid-soundfont-gm)
only when re-run; the FLAC files it writes are committed, so synth never needs them at run time.

    python tools/make_piano_samples.py [--soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile

RATE = 44_100
HOLD_SECONDS = 2.6  # key held down; the sample keeps its natural decay
LENGTH_SECONDS = 3.0
VELOCITY = 100  # synth scales loudness by velocity itself
OUT = Path(__file__).resolve().parent.parent / "synth" / "assets" / "piano"


def render_note(soundfont: Path, note: int, tmp: Path) -> np.ndarray:
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60)))
    track.append(mido.Message("program_change", program=0))  # acoustic grand piano
    track.append(mido.Message("note_on", note=note, velocity=VELOCITY, time=0))
    track.append(mido.Message("note_off", note=note, time=round(HOLD_SECONDS * 480)))
    track.append(mido.MetaMessage("end_of_track", time=480 * 2))
    midi_path, wav_path = tmp / f"{note}.mid", tmp / f"{note}.wav"
    midi.save(midi_path)
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.8", "-r", str(RATE), "-F", str(wav_path),
                    str(soundfont), str(midi_path)], check=True, capture_output=True)
    audio, rate = soundfile.read(wav_path, dtype="float32", always_2d=True)
    assert rate == RATE
    mono = audio.mean(axis=1)
    start = int(np.argmax(np.abs(mono) > 1e-4))  # trim the silence before the attack
    sample = mono[start : start + int(LENGTH_SECONDS * RATE)]
    fade = int(0.05 * RATE)  # the very end fades to silence so a cut never clicks
    sample[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soundfont", type=Path,
                        default=Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"))
    args = parser.parse_args()
    if not shutil.which("fluidsynth") or not args.soundfont.is_file():
        raise SystemExit("needs fluidsynth and the FluidR3_GM SoundFont: "
                         "apt-get install fluidsynth fluid-soundfont-gm")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for note in range(48, 72):
            sample = render_note(args.soundfont, note, Path(tmp))
            soundfile.write(OUT / f"{note}.flac", sample, RATE, subtype="PCM_16")
            print(f"{note}: peak {np.abs(sample).max():.3f}, {len(sample) / RATE:.2f} s")
    copyright = Path("/usr/share/doc/fluid-soundfont-gm/copyright")
    licence = ("Piano samples rendered from FluidR3_GM.sf2 (preset 0, acoustic grand piano) with\n"
               "FluidSynth by tools/make_piano_samples.py. FluidR3_GM is released under the MIT\n"
               "licence; its Debian copyright file follows.\n\n")
    licence += copyright.read_text() if copyright.is_file() else ""
    (OUT / "LICENSE").write_text(licence)


if __name__ == "__main__":
    main()
