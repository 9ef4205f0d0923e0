"""`synth import` over a folder of generated MIDI files: files per second parsed one by one in
this process against the process pool, and the pool's CPU time (this process plus its workers)
over wall time, which is above 1 only if more than one core worked. Each run must import every
file, and the pool's song files must be byte for byte those of the one-by-one import.

    python bench/import.py [FILES]     (default 1000)
"""

import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))

from conftest import make_midi  # noqa: E402
from synth.music import importer  # noqa: E402


def generate(folder: Path, count: int, notes: int = 200) -> list[Path]:
    """`count` two-track files: a melody of `notes` notes with rests, over a bass line."""
    rng = random.Random(0)
    folder.mkdir()
    for index in range(count):
        melody, bass, beat = [], [], 0.0
        for _ in range(notes):
            length = rng.choice([0.25, 0.5, 0.5, 1, 1, 1.5, 2])
            melody.append((beat, beat + length, rng.randint(55, 84)))
            beat += length + rng.choice([0, 0, 0, 0.5, 1])
        bass = [(b, b + 2, rng.randint(36, 50)) for b in range(0, int(beat), 2)]
        make_midi(folder / f"tune-{index:04d}.mid", [melody, bass], tpb=rng.choice([96, 480]))
    return sorted(folder.glob("*.mid"))


def cpu_seconds() -> float:
    me, children = (resource.getrusage(who) for who in
                    (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def run(paths: list[Path], dataset: Path, workers: int) -> tuple[float, float]:
    """Import everything; returns (wall seconds, CPU seconds) and checks every file worked."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    results = list(importer.import_many(paths, dataset, workers=workers))
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    failed = [r.error for r in results if not r.ok]
    assert not failed, failed[:3]
    assert len(results) == len(paths) == len(list(dataset.glob("*.txt")))
    return wall, cpu


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = generate(tmp / "midi", count)
        for path in paths[:50]:
            path.read_bytes()  # warm the file cache for the first, sequential run
        seq_wall, seq_cpu = run(paths, tmp / "sequential", workers=1)
        pool_wall, pool_cpu = run(paths, tmp / "pool", workers=cores)
        same = all((tmp / "pool" / p.name).read_bytes() == p.read_bytes()
                   for p in (tmp / "sequential").glob("*.txt"))
        assert same, "the pool's song files differ from the one-by-one import's"
    print(f"{count} MIDI files (200-note melody over a bass line), {cores} cores")
    print(f"  one by one : {seq_wall:6.2f} s  {count / seq_wall:7.0f} files/s  "
          f"CPU/wall {seq_cpu / seq_wall:.2f}")
    print(f"  pool       : {pool_wall:6.2f} s  {count / pool_wall:7.0f} files/s  "
          f"CPU/wall {pool_cpu / pool_wall:.2f}  ({seq_wall / pool_wall:.2f}x faster)")
    print("  every file imported; pool output identical to one-by-one: yes")


if __name__ == "__main__":
    main()
