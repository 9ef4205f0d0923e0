"""`synth train` killed with SIGKILL at seeded moments (issue 15): the previous model always
loads, nothing half-written appears under a name the user sees, and the same command run again
resumes and ends as an uninterrupted training does. Slow (a real process per run); CI runs it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import random_weights
from test_train import small_songs

pytestmark = pytest.mark.slow

EPOCHS = "5"


def start(folder: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "synth.cli", "train", "--epochs", EPOCHS,
                             "--batch-size", "8"],
                            cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def visible_files(folder: Path) -> set[str]:
    """Every file a user sees: none hidden, none inside a hidden folder."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in
                                       p.relative_to(folder).parts)}


def model_files(manifest: dict) -> set[str]:
    """The files a model folder holds: its manifest and what it names (weights, memory)."""
    named = [manifest["weights"]["file"]]
    if manifest.get("memory", {}).get("tables"):
        named.append(manifest["memory"]["tables"]["file"])
    return {"model/manifest.json"} | {f"model/{name}" for name in named}


def test_train_killed_at_seeded_moments_resumes_to_the_same_end(tmp_path):
    from synth.learn.model import load_model, save_model
    from synth.music.songs import write_song

    for name in ("reference", "killed"):
        for song in small_songs(8):
            write_song(tmp_path / name / "dataset" / f"{song.title}.txt", song)
    reference = start(tmp_path / "reference")
    reference.communicate(timeout=600)
    assert reference.returncode == 0
    expected = load_model(tmp_path / "reference" / "model").manifest

    folder = tmp_path / "killed"
    save_model(folder / "model", random_weights(), {"start_probs": [0.0] + [1 / 24] * 24})
    previous = (folder / "model" / "manifest.json").read_text()
    songs = {f"dataset/{s.title}.txt" for s in small_songs(8)}
    rng = np.random.default_rng(15)
    # kill during start-up, then after a seeded number of epoch lines plus a seeded delay
    moments = [(0, 0.0)] + [(int(rng.integers(1, int(EPOCHS) + 1)), float(rng.uniform(0, 1)))
                            for _ in range(3)]
    resumed = False
    for lines, delay in moments:
        process = start(folder)
        seen = 0
        while seen < lines:
            line = process.stdout.readline()
            if not line:
                break
            resumed |= line.startswith("Resuming after epoch")
            seen += line.startswith("epoch ")
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        process.stdout.close()
        model = load_model(folder / "model")  # the previous model, or the new one, whole
        manifest = (folder / "model" / "manifest.json").read_text()
        assert manifest == previous or model.manifest["training"]["epochs_run"] > 0
        assert visible_files(folder) == songs | model_files(model.manifest)
    finished = start(folder)
    out, _ = finished.communicate(timeout=600)
    assert finished.returncode == 0
    assert resumed or "Resuming after epoch" in out  # some run continued a killed one
    got = load_model(folder / "model").manifest
    assert got["training"]["epochs_run"] == expected["training"]["epochs_run"]
    assert got["metrics"]["loss"] == pytest.approx(expected["metrics"]["loss"], rel=0.02)
    assert visible_files(folder) == songs | model_files(got)
    assert not any(p.name.endswith(".checkpoint") for p in folder.iterdir())
