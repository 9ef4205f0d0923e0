"""Real-time factor of rendering 200 events with effects (SPEC section 7: over 300x), the time
of writing that audio as WAV, and FluidSynth's time for the same notes where fluidsynth and
FluidR3_GM are installed. Then the level of the demo song (`synth compose --notes 200 --seed 7`)
measured with pyloudnorm: integrated loudness, true peak (4x oversampled), crest factor, and
how far the low-pass takes the energy above twice its cutoff below `--no-fx`."""

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth.sound.render import render_song, save_audio  # noqa: E402
from synth.music.events import Event  # noqa: E402
from synth.music.midi import events_to_midi  # noqa: E402
from synth.sound.piano import RATE, Performance, samples  # noqa: E402

RUNS = 7
rng = np.random.default_rng(0)
songs = {
    "200 one-beat notes": [Event(int(c)) for c in rng.integers(1, 25, 200)],
    "200 events of varied lengths, rests among them": [
        Event(int(c), int(q)) for c, q in zip(rng.integers(0, 25, 200),
                                              rng.choice([1, 2, 2, 4, 4, 4, 6, 8, 16], 200))],
}
samples()
for label, events in songs.items():
    render_song(events)  # warm up pedalboard
    runs, writes, seconds = [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(RUNS):
            start = time.perf_counter()
            audio = render_song(events)
            runs.append(time.perf_counter() - start)
            start = time.perf_counter()
            save_audio(Path(tmp) / "song.wav", audio)
            writes.append(time.perf_counter() - start)
            seconds = len(audio) / RATE
    median = statistics.median(runs)
    print(f"render {label} ({seconds:.1f} s of audio) with effects: {median * 1000:.0f} ms, "
          f"{seconds / median:.0f}x real time (median of {RUNS}; best "
          f"{seconds / min(runs):.0f}x); WAV write {statistics.median(writes) * 1000:.0f} ms")

events = songs["200 one-beat notes"]
soundfont = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
if shutil.which("fluidsynth") and soundfont.is_file():
    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "s.mid"
        events_to_midi(events, 150).save(midi)
        start = time.perf_counter()
        subprocess.run(["fluidsynth", "-ni", "-q", "-F", str(Path(tmp) / "s.wav"), "-r", "44100",
                        str(soundfont), str(midi)], check=True, capture_output=True)
        took = time.perf_counter() - start
        print(f"fluidsynth, the 200 one-beat notes (no effects, whole process): "
              f"{took * 1000:.0f} ms, {len(events) * 0.4 / took:.0f}x real time")
else:
    print("fluidsynth: not installed, skipped")

import pyloudnorm  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

from synth import api  # noqa: E402
from synth.sound.effects import Effects  # noqa: E402


def energy_above(audio: np.ndarray, hz: float) -> float:
    power = np.abs(np.fft.rfft(audio.mean(axis=1))) ** 2
    return float(power[np.fft.rfftfreq(len(audio), 1 / RATE) > hz].sum())


demo = api.compose(200, seed=7)
meter = pyloudnorm.Meter(RATE)
audio = {}
for label, settings in (("with effects", Effects()), ("--no-fx", Effects(enabled=False))):
    audio[label] = render_song(demo, Performance(bpm=150), settings)
    sound = audio[label].astype(np.float64)
    peak = np.abs(resample_poly(sound, 4, 1, axis=0)).max()
    crest = np.abs(sound).max() / np.sqrt(np.mean(sound ** 2))
    print(f"demo song (compose --notes 200 --seed 7, {len(sound) / RATE:.0f} s) {label}: "
          f"{meter.integrated_loudness(sound):.1f} LUFS integrated, true peak "
          f"{20 * np.log10(peak):.2f} dBTP, crest factor {20 * np.log10(crest):.1f} dB")
cutoff = Effects().cutoff
print(f"energy above {2 * cutoff:.0f} Hz (twice the cutoff), effects against --no-fx: "
      f"{10 * np.log10(energy_above(audio['with effects'], 2 * cutoff) / energy_above(audio['--no-fx'], 2 * cutoff)):.1f} dB")
