"""Time of `synth train` on the shipped dataset (SPEC section 7: under 3 minutes)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

root = Path(__file__).resolve().parent.parent
synth = shutil.which("synth", path=os.path.dirname(sys.executable)) or "synth"
with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    done = subprocess.run([synth, "train", "--dataset", str(root / "dataset"), "--model",
                           str(Path(tmp) / "model")], capture_output=True, text=True)
    took = time.perf_counter() - start
if done.returncode:
    sys.exit(done.stderr)
table = [line for line in done.stdout.splitlines() if "LSTM" in line or "Kneser" in line]
print(f"synth train on the shipped dataset: {took:.0f} s")
print("\n".join(table))
