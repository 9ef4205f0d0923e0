"""Whole-process time of `synth compose --notes 200 --out song.wav`, from Python's start to its
exit (SPEC section 7: under 0.5 s), with the shipped model and with a random format-2 model of
the shipped size (256 units) saved to a folder and passed with --model.

A format-2 model draws lengths, so its 200 events last longer or shorter than 200 beats: the
audio's duration is printed beside the times. A run that fails is reported, not timed (a
failing run is fast).

Then the peak memory (maximum resident set) of the whole process for 200 and 10 000 events
with the shipped model (SPEC section 7: flat in the song's length), and the 10 000-event time.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synth.learn.model import load_model, save_model  # noqa: E402

RUNS = 7  # the first one only warms the file cache
synth = shutil.which("synth", path=os.path.dirname(sys.executable)) or "synth"


def random_format2(folder: Path, units: int = 256) -> Path:
    rng = np.random.default_rng(0)
    shapes = {"lstm_kernel": (57, 4 * units), "lstm_recurrent_kernel": (units, 4 * units),
              "lstm_bias": (4 * units,), "dense_kernel": (units, 25), "dense_bias": (25,),
              "length_kernel": (units + 25, 32), "length_bias": (32,)}
    save_model(folder, {k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in shapes.items()},
               {"start_probs": [0.0] + [1 / 24] * 24})
    return folder


def bench(label: str, extra: list[str], cwd: str) -> None:
    times, seconds = [], []
    for run in range(RUNS):
        out = Path(cwd) / "song.wav"
        out.unlink(missing_ok=True)
        start = time.perf_counter()
        done = subprocess.run([synth, "compose", "--notes", "200", "--seed", str(run), "--out",
                               "song.wav", *extra], cwd=cwd, capture_output=True, text=True)
        took = time.perf_counter() - start
        if done.returncode or not out.is_file():
            sys.exit(f"{label}: run {run} failed (status {done.returncode}):\n{done.stderr}")
        if run:
            times.append(took)
            seconds.append(soundfile.info(str(out)).duration)
    print(f"synth compose --notes 200, {label}: median {statistics.median(times):.3f} s, best "
          f"{min(times):.3f} s, worst {max(times):.3f} s ({len(times)} runs, all succeeded); "
          f"audio {min(seconds):.0f}-{max(seconds):.0f} s, median {statistics.median(seconds):.0f} s")


def peak_memory(notes: int, cwd: str) -> tuple[float, float, float]:
    """Peak resident memory (MB) and wall time of one `synth compose --notes N` process, and
    its audio's duration; each run in a fresh child so its peak is its own."""
    out = Path(cwd) / "long.wav"
    out.unlink(missing_ok=True)
    probe = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
             "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "took = time.perf_counter() - start; "
             "print(done.returncode, took, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(done.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, synth, "compose", "--notes", str(notes),
                           "--seed", "1", "--out", str(out)], cwd=cwd, capture_output=True,
                          text=True, check=True)
    first, stderr = done.stdout.split("\n", 1)
    status, took, kilobytes = first.split()
    if int(status) or not out.is_file():
        sys.exit(f"--notes {notes}: failed (status {status}):\n{stderr}")
    return int(kilobytes) / 1024, float(took), soundfile.info(str(out)).duration


with tempfile.TemporaryDirectory() as tmp:
    shipped = load_model()
    bench(f"shipped model (format {2 if shipped.has_lengths else 1})", [], tmp)
    model = random_format2(Path(tmp) / "random-model")
    bench("random format-2 model, 256 units (--model)", ["--model", str(model)], tmp)
    peaks = {}
    for notes in (200, 10_000):
        peaks[notes], took, seconds = peak_memory(notes, tmp)
        print(f"synth compose --notes {notes}: peak memory {peaks[notes]:.0f} MB, "
              f"{took:.2f} s for {seconds:.0f} s of audio (succeeded)")
    print(f"10 000 events peak minus 200 events peak: {peaks[10_000] - peaks[200]:+.0f} MB "
          "(budget: within 50 MB)")
