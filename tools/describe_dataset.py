"""Write dataset/README.md: songs, tokens, sources and the class histogram of the dataset."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

from synth import files
from synth.notes import class_name
from synth.songs import load_dataset

HEADER = """# The starter dataset

One song per file, whitespace-separated classes 0-24 (SPEC section 1: 0 is a rest, 1-24 are
C3-B4). Every melody is public domain and was made with `tools/build_dataset.py`, which writes
each melody from music21's bundled corpus to MIDI and turns it into tokens with `synth import`'s
own code (`synth.midi.import_midi`). music21's Essen folk-song collection is reserved for
independent evaluation and is never read. Rebuild with `make dataset`.
"""


def main(folder: Path = Path("dataset")) -> None:
    songs = load_dataset(folder)
    counts = collections.Counter(t for s in songs for t in s.tokens)
    total = sum(counts.values())
    groups = collections.Counter(s.source.split(",")[0] for s in songs)
    lengths = sorted(len(s.tokens) for s in songs)
    lines = [HEADER, f"**{len(songs)} songs, {total} tokens** (shortest {lengths[0]}, median "
             f"{lengths[len(lengths) // 2]}, longest {lengths[-1]}).", "",
             "| source | songs |", "|---|---|"]
    lines += [f"| {name} | {n} |" for name, n in groups.most_common()]
    lines += ["", "## Class histogram", "", "| class | note | count | share |", "|---|---|---|---|"]
    for token in range(25):
        share = counts[token] / total
        lines.append(f"| {token} | {class_name(token)} | {counts[token]} | {share:.1%} "
                     f"{'█' * round(share * 100)} |")
    files.write_text(folder / "README.md", "\n".join(lines) + "\n")
    print(f"{folder / 'README.md'}: {len(songs)} songs, {total} tokens")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("dataset"))
