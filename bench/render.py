"""Real-time factor of rendering 200 notes with effects (SPEC section 7: over 200x), and
FluidSynth's time for the same notes where fluidsynth and FluidR3_GM are installed."""

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from synth.audio import render_song
from synth.midi import tokens_to_midi
from synth.piano import RATE, samples

samples()
tokens = np.random.default_rng(0).integers(1, 25, 200).tolist()
render_song(tokens)  # warm up pedalboard
runs, seconds = [], 0.0
for _ in range(7):
    start = time.perf_counter()
    audio = render_song(tokens)
    runs.append(time.perf_counter() - start)
    seconds = len(audio) / RATE
best = statistics.median(runs)
print(f"render 200 notes ({seconds:.1f} s of audio) with effects: {best * 1000:.0f} ms, "
      f"{seconds / best:.0f}x real time (median of 7)")

soundfont = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
if shutil.which("fluidsynth") and soundfont.is_file():
    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "s.mid"
        tokens_to_midi(tokens, 150).save(midi)
        start = time.perf_counter()
        subprocess.run(["fluidsynth", "-ni", "-q", "-F", str(Path(tmp) / "s.wav"), "-r", "44100",
                        str(soundfont), str(midi)], check=True, capture_output=True)
        took = time.perf_counter() - start
        print(f"fluidsynth, same notes (no effects, whole process): {took * 1000:.0f} ms, "
              f"{seconds / took:.0f}x real time")
else:
    print("fluidsynth: not installed, skipped")
