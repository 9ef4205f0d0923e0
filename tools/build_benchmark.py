"""Build the quality benchmark in bench/corpus/: a few thousand melodies with lengths from
music21's corpora other than Essen, split by a fixed seed into train/ and test/.

The melodies: every Bach chorale's soprano line and O'Neill's Music of Ireland (1850); with
--more, also Ryan's Mammoth Collection (1883) and Aird's Airs (a two-hour build on 2 cores). Each goes through the same path as the starter
dataset (tools/build_dataset.py): made playable as written, exported by music21 as MIDI, read
back by `synth.music.midi.import_midi`. Songs with the same class sequence as an earlier one are
left out, so no tune sits in both splits. The Essen folk-song collection is never read.

The validation slice is not a folder: `synth train` holds out a seeded share of train/ for
early stopping, and that share is the slice on which the training settings were chosen.

Each corpus file's melodies are kept in --cache as they are read, so an interrupted build
picks up where it stopped.

    python tools/build_benchmark.py [--out bench/corpus] [--test 0.15] [--seed 14] [--jobs 2]
        [--more] [--cache /tmp/synth-benchmark-cache]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from build_dataset import FORBIDDEN, corpus_paths, playable  # noqa: E402

from synth import files
from synth.music import midi, songs  # noqa: E402
from synth.music.events import format_length  # noqa: E402
from synth.music.notes import REST  # noqa: E402

COLLECTIONS = (("oneills1850", "O'Neill's Music of Ireland (1850)"),
               ("ryansMammoth", "Ryan's Mammoth Collection (1883)"),
               ("airdsAirs", "Aird's Selection of Airs (1782-1803)"))
DEFAULT_COLLECTIONS = 1  # O'Neill's; --more adds the rest
# music21 9 ran for over 8 minutes on this file without finishing (the 38 other O'Neill files
# take under a minute each): left out so the build stays bounded.
SKIPPED = ("oneills1850/1031-1115.abc",)
MIN_EVENTS, MAX_EVENTS = 24, 600
MADE_HERE = "music21 corpus (benchmark)"


def sources(more: bool = False) -> list[tuple[str, str]]:
    """(kind, path) of every file the benchmark reads, in a fixed order."""
    out = [("chorale", str(p)) for p in corpus_paths("bach")
           if p.suffix == ".mxl" and p.name.startswith("bwv")]
    for collection, _ in COLLECTIONS[: None if more else DEFAULT_COLLECTIONS]:
        out.extend((collection, str(p)) for p in corpus_paths(collection)
                   if not any(str(p).endswith(skip) for skip in SKIPPED))
    assert all(FORBIDDEN not in p for _, p in out)
    return out


def cached_source(job: tuple[str, str, str]) -> list[list[str]]:
    """`read_source`, kept in the cache folder (a JSON file per corpus file)."""
    import hashlib
    import json

    kind, path, cache = job
    where = Path(cache) / f"{hashlib.sha256(f'{kind}:{path}'.encode()).hexdigest()[:20]}.json"
    if where.is_file():
        return json.loads(where.read_text(encoding="utf-8"))
    found = read_source((kind, path))
    files.write_text(where, json.dumps(found))
    print(f"{len(found):3d} from {Path(path).name}", flush=True)
    return found


def read_source(job: tuple[str, str]) -> list[tuple[str, str, str, str]]:
    """(kind, title, source line, song text) of every usable melody in one corpus file."""
    from music21 import converter

    kind, path = job
    found = []
    try:
        parsed = converter.parse(path)
    except Exception:
        return found
    if kind == "chorale":
        if len(parsed.parts) != 4:
            return found
        stem = Path(path).stem
        melodies = [(f"Chorale BWV {stem[3:]}",
                     f"J. S. Bach, chorale {stem} soprano line, {MADE_HERE}", parsed.parts[0])]
    else:
        label = dict(COLLECTIONS)[kind]
        melodies = []
        for score in getattr(parsed, "scores", [parsed]):
            title = score.metadata.title if score.metadata and score.metadata.title else ""
            title = title.strip().rstrip(".").strip() or Path(path).stem
            melodies.append((title, f"{label}, {Path(path).name}, {MADE_HERE}", score))
    with tempfile.TemporaryDirectory() as tmp:
        midi_path = Path(tmp) / "melody.mid"
        for title, source, melody in melodies:
            try:
                line, _ = playable(melody)
                line.write("midi", fp=str(midi_path))
                song, _ = midi.import_midi(midi_path)
            except Exception:
                continue
            while song.events and song.events[-1].cls == REST:
                song.events.pop()
            if not MIN_EVENTS <= len(song.events) <= MAX_EVENTS:
                continue
            song.title, song.source, song.bpm = title, source, None
            found.append((kind, title, source, songs.format_song(song)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/corpus"))
    parser.add_argument("--test", type=float, default=0.15, help="share of songs in test/")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--more", action="store_true", help="add Ryan's and Aird's")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) /
                        "synth-benchmark-cache")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    jobs = [(kind, path, str(args.cache)) for kind, path in sources(args.more)]
    with ProcessPoolExecutor(args.jobs) as pool:
        found = [m for part in pool.map(cached_source, jobs) for m in part]
    seen: set[tuple[int, ...]] = set()
    unique = []
    for kind, title, source, text in found:
        song = songs.parse_song(text)
        key = tuple(song.classes)
        if key not in seen:
            seen.add(key)
            unique.append((kind, files.slug(title) or "untitled", text))
    order = np.random.default_rng(args.seed).permutation(len(unique))
    test_count = round(args.test * len(unique))
    for split in ("train", "test"):
        shutil.rmtree(args.out / split, ignore_errors=True)
        (args.out / split).mkdir(parents=True)
    counts: dict = {"train": {}, "test": {}}
    kept: dict = {"train": [], "test": []}
    for rank, index in enumerate(order.tolist()):
        kind, slug, text = unique[index]
        split = "test" if rank < test_count else "train"
        # The number keeps names unique and the files in the order the seed chose.
        files.write_text(args.out / split / f"{index:05d}-{slug[:40]}.txt", text)
        counts[split][kind] = counts[split].get(kind, 0) + 1
        kept[split].append(songs.parse_song(text).events)
    print(f"{len(found)} melodies read, {len(unique)} unique: {counts}")
    files.write_text(args.out / "README.md", describe(kept, counts, args))


def describe(kept: dict, counts: dict, args) -> str:
    """The corpus README: where the songs come from, counts, and length histograms."""
    names = {"chorale": "Bach chorales (soprano lines)", **dict(COLLECTIONS)}
    lines = ["# The quality benchmark corpus", "",
             "Built by `python tools/build_benchmark.py` (see its docstring for every choice) "
             "from music21's corpus; never the Essen folk songs. One song per file in synth's "
             "song format. Songs of 24-600 events; a song with the same classes as an earlier "
             f"one is left out. Split by seed {args.seed}: {args.test:.0%} of the songs in "
             "test/, the rest in train/. The validation slice is the share of train/ that "
             "`synth train` holds out by its seed (15%, listed in the model's manifest).", "",
             "| source | train | test |", "|---|---|---|"]
    for kind in sorted({k for split in counts.values() for k in split}):
        lines.append(f"| {names[kind]} | {counts['train'].get(kind, 0)} | "
                     f"{counts['test'].get(kind, 0)} |")
    total = {split: sum(c.values()) for split, c in counts.items()}
    events = {split: sum(len(s) for s in kept[split]) for split in kept}
    lines += [f"| **all songs** | {total['train']} | {total['test']} |",
              f"| events | {events['train']} | {events['test']} |", "",
              "Songs by their number of events:", "", "| events | train | test |",
              "|---|---|---|"]
    edges = [24, 50, 100, 150, 200, 300, 400, 601]
    for low, high in zip(edges, edges[1:]):
        row = [sum(low <= len(s) < high for s in kept[split]) for split in ("train", "test")]
        lines.append(f"| {low}-{high - 1} | {row[0]} | {row[1]} |")
    lines += ["", "Events by their length in beats (share of all events):", "",
              "| beats | train | test |", "|---|---|---|"]
    hist = {split: np.bincount([e.quarters for s in kept[split] for e in s], minlength=33)
            for split in kept}
    for quarters in range(1, 33):
        if hist["train"][quarters] + hist["test"][quarters] >= 0.001 * events["train"]:
            lines.append(f"| {format_length(quarters)} | "
                         f"{hist['train'][quarters] / events['train']:.1%} | "
                         f"{hist['test'][quarters] / events['test']:.1%} |")
    lines.append("| (others) | under 0.1% each | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
