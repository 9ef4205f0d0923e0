"""Retrain the models shipped with synth, reproducibly, and print their held-out scores.

    python tools/train_styles.py                     # all four: default, chorales, irish, scottish
    python tools/train_styles.py chorales irish      # only these
    python tools/train_styles.py --table             # no training: the README's table

Each model is trained by `synth train` itself, with its default settings (seed 0, 15 % of the
songs held out), in a process of its own, on the starter dataset or the share of it from one
source: the default on all of it, written to synth/assets/model/; each style on one source's
songs (`synth train --source TEXT`), written to synth/assets/styles/NAME/. The package ships
both folders. Needs the [train] extra (TensorFlow). Run from anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth.learn import styles  # noqa: E402

DATASET = ROOT / "dataset"


@dataclass(frozen=True)
class Shipped:
    name: str
    source: str | None  # text of the songs' '# source:' lines; None: every song
    what: str
    folder: Path


SHIPPED = [
    Shipped(styles.DEFAULT, None, "the whole starter dataset", styles.PACKAGED_DEFAULT),
    Shipped("chorales", "J. S. Bach", "Bach chorale soprano lines",
            styles.PACKAGED_STYLES / "chorales"),
    Shipped("irish", "O'Neill", "tunes from O'Neill's Music of Ireland (1850)",
            styles.PACKAGED_STYLES / "irish"),
    Shipped("scottish", "Aird", "Aird's Selection of Airs (1782-1803)",
            styles.PACKAGED_STYLES / "scottish"),
]


def train(model: Shipped) -> None:
    """`synth train` with its defaults, in its own process (a fresh TensorFlow each time)."""
    command = [sys.executable, "-m", "synth.cli", "train", "--dataset", str(DATASET),
               "--model", str(model.folder)]
    if model.source:
        command += ["--source", model.source]
    print(f"== {model.name}: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=ROOT, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def manifest(folder: Path) -> dict:
    return json.loads((folder / styles.MANIFEST).read_text(encoding="utf-8"))


def table() -> str:
    """The README's table: each shipped model's held-out scores, from its manifest, beside the
    Kneser-Ney n-grams fitted to the same training songs and scored on the same songs."""
    rows = ["| style | trained on | songs | held out: songs, events | class bits | length bits "
            "| joint bits | n-gram joint bits |",
            "|---|---|---|---|---|---|---|---|"]
    for model in SHIPPED:
        found = manifest(model.folder)
        m, t = found["metrics"], found["training"]
        ngram = m["baselines"]["class_bits"] + m["baselines"]["length_bits"]
        events = f"{m['events']:,}".replace(",", " ")  # as the README writes 1 696
        rows.append(f"| {model.name} | {model.what} | {t['songs']} | "
                    f"{len(t['held_out_songs'])}, {events} | {m['class_bits']:.3f} | "
                    f"{m['length_bits']:.3f} | **{m['joint_bits']:.3f}** | {ngram:.3f} |")
    return "\n".join(rows)


def main() -> None:
    names = [m.name for m in SHIPPED]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="NAME",
                        help=f"models to retrain: {', '.join(names)} (default: all)")
    parser.add_argument("--table", action="store_true",
                        help="train nothing: print the held-out scores of the shipped models")
    args = parser.parse_args()
    unknown = [n for n in args.models if n not in names]
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}: expected {', '.join(names)}")
    if not args.table:
        for model in SHIPPED:
            if model.name in (args.models or names):
                train(model)
    print(table())


if __name__ == "__main__":
    main()
