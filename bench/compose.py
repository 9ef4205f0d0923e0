"""Whole-process time of `synth compose --notes 200 --out song.wav` (SPEC section 7: under 1 s)."""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

synth = shutil.which("synth", path=os.path.dirname(sys.executable)) or "synth"
times = []
with tempfile.TemporaryDirectory() as tmp:
    for run in range(6):
        start = time.perf_counter()
        subprocess.run([synth, "compose", "--notes", "200", "--seed", str(run), "--out",
                        "song.wav", "--overwrite"], cwd=tmp, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
times = times[1:]  # the first run warms the file cache
print(f"synth compose --notes 200: median {statistics.median(times):.3f} s, "
      f"best {min(times):.3f} s, worst {max(times):.3f} s (5 runs)")
