"""`synth train`: time on the shipped dataset (SPEC section 7: under 3 minutes), and with
--memory, peak memory of one epoch on 300 and on 3 000 generated songs (issue 12: the input
pipeline streams the transpositions, so memory must not grow with them).

    python bench/train.py            # the shipped dataset: time and the held-out table
    python bench/train.py --memory   # peak RSS, 300 against 3 000 songs, one epoch each

Runs the synth found on PYTHONPATH (this checkout by default)."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

root = Path(__file__).resolve().parent.parent
env = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", str(root)))


def train(*args: str, cwd: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, output) of one `synth train` process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, "-m", "synth.cli", "train", *args],
                                   cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # reaped here, to read its own peak
        took = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if status:
            sys.exit(err.read()[-3000:])
        return took, usage.ru_maxrss / 1024, out.read()


def songs(folder: Path, count: int, seed: int = 0) -> int:
    """Write `count` random-walk melodies of 48-160 events; returns the events written."""
    sys.path.insert(0, env["PYTHONPATH"].split(os.pathsep)[0])
    import numpy as np

    from synth.music.events import Event
    from synth.music.songs import Song, write_song

    rng = np.random.default_rng(seed)
    total = 0
    for index in range(count):
        size = int(rng.integers(48, 161))
        pitch = int(rng.integers(6, 20))
        events = []
        for _ in range(size):
            pitch = int(np.clip(pitch + rng.integers(-3, 4), 1, 24))
            events.append(Event(0 if rng.random() < 0.05 else pitch,
                                int(rng.choice([1, 2, 2, 4, 4, 4, 6, 8, 16]))))
        write_song(folder / f"song-{index:05d}.txt", Song(events=events, title=f"song {index}"))
        total += size
    return total


def peak_rss() -> None:
    for count in (300, 3000):
        with tempfile.TemporaryDirectory() as tmp:
            events = songs(Path(tmp) / "dataset", count)
            took, rss, out = train("--epochs", "1", cwd=Path(tmp))
        print(f"{count} songs ({events} events, every transposition each epoch): one epoch "
              f"{took:.0f} s, peak RSS {rss:.0f} MB")


def shipped() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        took, rss, out = train("--dataset", str(root / "dataset"), "--model",
                               str(Path(tmp) / "model"), cwd=Path(tmp))
    table = [line for line in out.splitlines() if "LSTM" in line or "Kneser" in line
             or "best epoch" in line]
    print(f"synth train on the shipped dataset: {took:.0f} s, peak RSS {rss:.0f} MB")
    print("\n".join(table))


if "--memory" in sys.argv[1:]:
    peak_rss()
else:
    shipped()
