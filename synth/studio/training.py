"""The train page's logic: one `synth train` at a time, run as the CLI itself in a child
process (TensorFlow never enters the studio's process), its progress lines kept for the page.
The new model is used once it is written: the studio loads models by their manifest's time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from synth.errors import SynthError
from synth.studio.library import Ask

MAX_LINES = 2000


class Trainer:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.state = "idle"  # idle, running, done, failed, stopped
        self.target = ""
        self.began = 0.0
        self.ended = 0.0
        self._lock = threading.Lock()

    def start(self, request: object) -> dict:
        """Start training from {"style": "" or NAME, "dataset": "dataset" or "dataset/SUB",
        "source": text, "epochs": N, "max_minutes": M}, as `synth train` with those options;
        refused while one runs."""
        from synth.learn import styles

        ask = Ask(request)
        style = styles.check_name(ask.text("style", "").strip() or styles.DEFAULT)
        target = styles.folder(style, Path(".")).as_posix()
        source = ask.text("source", "").strip()
        dataset = ask.text("dataset", "dataset").strip().strip("/") or "dataset"
        parts = dataset.split("/")
        if parts[0] != "dataset" or any(p in ("", ".", "..") or p.startswith(".")
                                        for p in parts):
            raise SynthError(f"dataset {dataset[:60]!r}: expected dataset or a folder inside it")
        if not (self.root / dataset).is_dir() or \
                not (self.root / dataset).resolve().is_relative_to((self.root / "dataset")
                                                                  .resolve()):
            raise SynthError(f"{dataset}: no such folder")
        epochs = ask.int("epochs", 40, 1, 1000)
        minutes = ask.float("max_minutes", 0.0)
        args = [sys.executable, "-m", "synth.cli", "train", "--dataset", dataset,
                "--style", style, "--epochs", str(epochs)]
        if source:
            args += ["--source", source]
        if minutes > 0:
            args += ["--max-minutes", f"{minutes:g}"]
        with self._lock:
            if self.running():
                raise SynthError(f"a training is running already (into {self.target}/): "
                                 "wait for it or stop it")
            env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="120")
            self.process = subprocess.Popen(args, cwd=self.root, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            text=True, errors="replace", env=env)
            self.lines = [" ".join(["synth", *args[3:]])]
            self.state, self.target = "running", target
            self.began, self.ended = time.time(), 0.0
        threading.Thread(target=self._follow, args=(self.process,), daemon=True).start()
        return self.status()

    def _follow(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            line = line.rstrip()
            if line and not _noise(line):
                with self._lock:
                    self.lines.append(line)
                    del self.lines[:-MAX_LINES]
        code = process.wait()
        with self._lock:
            if self.state == "running":
                self.state = "done" if code == 0 else "failed"
            self.ended = time.time()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> dict:
        """Stop the training in progress, as Ctrl-C would (nothing half-written is kept)."""
        with self._lock:
            if self.running():
                self.state = "stopped"
                self.process.terminate()
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.status()

    def status(self, since: int = 0) -> dict:
        with self._lock:
            epoch = None
            for line in reversed(self.lines):
                found = re.match(r"epoch (\d+)/(\d+)", line)
                if found:
                    epoch = [int(found.group(1)), int(found.group(2))]
                    break
            end = self.ended or time.time()
            return {"state": self.state, "target": self.target, "epoch": epoch,
                    "seconds": round(end - self.began, 1) if self.began else 0.0,
                    "lines": self.lines[since:], "count": len(self.lines)}


def _noise(line: str) -> bool:
    """TensorFlow's start-up chatter, which says nothing to a musician."""
    return bool(re.search(r"tensorflow|oneDNN|cuda|cpu_feature_guard|absl|E0000|W0000|I0000|"
                          r"To enable the following instructions", line))


def folders(root: Path) -> list[str]:
    """dataset and each folder inside it that holds song files: what can be trained on."""
    dataset = Path(root) / "dataset"
    if not dataset.is_dir():
        return []
    inner = sorted(p for p in dataset.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and p.name != "takes" and any(p.glob("*.txt")))
    return ["dataset"] + [f"dataset/{p.name}" for p in inner]
