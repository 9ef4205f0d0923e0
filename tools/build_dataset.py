"""Rebuild the starter dataset in dataset/ from public-domain melodies in music21's corpus.

Each melody goes through the same path as `synth import`: music21 writes it as a MIDI file,
`synth.midi.import_midi` turns that into tokens. music21 is needed only here, at build time
(`pip install -e .[dataset]`). The Essen folk-song collection is reserved for independent
evaluation and is never read.

    python tools/build_dataset.py [--out dataset] [--chorales 45] [--tunes 45] [--airs 20]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from synth import files, midi, songs

FORBIDDEN = "essenFolksong"


def corpus_paths(folder: str) -> list[Path]:
    from music21 import corpus

    paths = sorted(Path(p) for p in corpus.getPaths() if f"/{folder}/" in str(p))
    assert all(FORBIDDEN not in str(p) for p in paths)
    return paths


def melody_scores():
    """Yield (title, source, music21 stream of one melody line) in a fixed order."""
    from music21 import converter

    for path in corpus_paths("bach"):
        if path.suffix != ".mxl" or not path.name.startswith("bwv"):
            continue
        try:
            score = converter.parse(path)
        except Exception:
            continue
        if len(score.parts) != 4:
            continue
        yield ("chorale", f"Chorale BWV {path.stem[3:]}",
               f"J. S. Bach, chorale {path.stem} soprano line, music21 corpus", score.parts[0])
    for collection, label in (("oneills1850", "O'Neill's Music of Ireland (1850)"),
                              ("airdsAirs", "Aird's Selection of Airs (1782-1803)")):
        kind = "tune" if collection == "oneills1850" else "air"
        for path in corpus_paths(collection):
            try:
                opus = converter.parse(path)
            except Exception:
                continue
            for score in getattr(opus, "scores", [opus]):
                title = score.metadata.title if score.metadata and score.metadata.title else ""
                title = title.strip().rstrip(".").strip()
                if title:
                    yield kind, title, f"{label}, {path.name}, music21 corpus", score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dataset"))
    parser.add_argument("--chorales", type=int, default=45)
    parser.add_argument("--tunes", type=int, default=45)
    parser.add_argument("--airs", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=320)
    args = parser.parse_args()
    wanted = {"chorale": args.chorales, "tune": args.tunes, "air": args.airs}
    taken = {kind: 0 for kind in wanted}
    seen: set[tuple[int, ...]] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for kind, title, source, stream in melody_scores():
            if taken[kind] >= wanted[kind]:
                if all(taken[k] >= wanted[k] for k in wanted):
                    break
                continue
            midi_path = Path(tmp) / "melody.mid"
            try:
                stream.write("midi", fp=str(midi_path))
                song, report = midi.import_midi(midi_path)
            except Exception as exc:  # a piece music21 cannot export is skipped, not fatal
                print(f"skip {title}: {exc}")
                continue
            key = tuple(song.tokens)
            if key in seen or not 24 <= len(song.tokens) <= args.max_tokens:
                continue
            seen.add(key)
            song.title, song.source, song.bpm = title, source, None
            out = files.unique_path(args.out, files.slug(title), ".txt")
            songs.write_song(out, song)
            taken[kind] += 1
            print(f"{out}: {len(song.tokens)} tokens, folded {report.folded}, "
                  f"dropped {report.dropped}, rests {report.rests}")
    print(taken)


if __name__ == "__main__":
    main()
