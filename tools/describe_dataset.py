"""Write dataset/README.md: songs, events, beats, sources, and the class and length histograms."""

from __future__ import annotations

import collections
import sys
from pathlib import Path

from synth import files
from synth.music.events import QUARTERS_PER_BEAT, format_length
from synth.music.notes import class_name
from synth.music.songs import load_dataset

HEADER = """# The starter dataset

One song per file: whitespace-separated events, each a class 0-24 (SPEC section 1: 0 is a
rest, 1-24 are C3-B4) with its length in beats after a colon (`13:2`, `15:0.5`; a one-beat
event is written as its class alone). Every melody is public domain and was made with
`tools/build_dataset.py`, which writes each melody from music21's bundled corpus to MIDI and
turns it into events with `synth import`'s own code (`synth.music.midi.import_midi`). music21's
Essen folk-song collection is reserved for independent evaluation and is never read. Rebuild
with `make dataset`.

## How the lengths were made

A beat is the quarter note, in every metre: music21 writes MIDI with ticks per quarter note and
`synth import` counts in the file's ticks per beat, so a 6/8 jig's eighth notes are half beats
(a dotted quarter 1.5), a reel's eighths half beats, a chorale's half notes two beats. Onsets
and ends are quantised to the quarter-beat grid; silences in the score are rests. Before each
melody goes to MIDI, the build script:

- expands repeats and first and second endings (as music21's MIDI export always does), so a
  tune is as long as it is played;
- joins tied notes into one (a tie between two different pitches, a slip in some ABC
  transcriptions, is dropped instead);
- leaves out grace notes, which take no time in the score;
- holds a note under a fermata twice as long, at most 8 beats (music21's MIDI export ignores
  fermatas; in the chorales a phrase-end half note becomes 4 beats);
- holds a note longer than 8 beats (a chorale's final note tied over several bars) 8 beats and
  brings the music after it forward, so no long rest is left behind.

A pickup starts the song at its first note (import ignores silence before the first note), and
silence after the last note is left out. Triplets do not fit the quarter-beat grid: their
notes move to the nearest grid point (a triplet of eighths becomes 0.25 + 0.5 + 0.25 beats),
and where two land on one point (a triplet of sixteenths) import keeps the later one. Songs of
24 to 320 events are kept; a song whose pitches repeat an earlier one's (in any rhythm) is
left out.
"""


def bar(share: float) -> str:
    return f"{share:.1%} {'█' * round(share * 100)}"


def main(folder: Path = Path("dataset")) -> None:
    songs = load_dataset(folder)
    events = [e for s in songs for e in s.events]
    total = len(events)
    beats = sum(s.beats for s in songs)
    group_of = [s.source.split(",")[0] or "(no source)" for s in songs]
    groups = collections.Counter(group_of)
    names = [name for name, _ in groups.most_common()]
    sizes = sorted(len(s.events) for s in songs)
    lines = [HEADER, f"**{len(songs)} songs, {total} events, {beats:g} beats** (events per song: "
             f"shortest {sizes[0]}, median {sizes[len(sizes) // 2]}, longest {sizes[-1]}).", "",
             "| source | songs | events | beats |", "|---|---|---|---|"]
    for name in names:
        mine = [s for s, g in zip(songs, group_of) if g == name]
        lines.append(f"| {name} | {len(mine)} | {sum(len(s.events) for s in mine)} | "
                     f"{sum(s.beats for s in mine):g} |")

    classes = collections.Counter(e.cls for e in events)
    lines += ["", "## Class histogram", "", "| class | note | count | share |", "|---|---|---|---|"]
    lines += [f"| {c} | {class_name(c)} | {classes[c]} | {bar(classes[c] / total)} |"
              for c in range(25)]

    lengths = collections.Counter(e.quarters for e in events)
    by_group = {name: collections.Counter() for name in names}
    for song, name in zip(songs, group_of):
        by_group[name].update(e.quarters for e in song.events)
    rests = collections.Counter(e.quarters for e in events if e.is_rest)
    lines += ["", "## Length histogram", "",
              f"Lengths in beats (the grid is 1/{QUARTERS_PER_BEAT} beat, the longest 8); "
              "lengths that never occur are left out.", "Rests are counted with the notes and "
              "also on their own; the last columns split the count by source.", "",
              "| beats | count | share | rests | " + " | ".join(names) + " |",
              "|---|---|---|---|" + "---|" * len(names)]
    for quarters in sorted(lengths):
        lines.append(f"| {format_length(quarters)} | {lengths[quarters]} | "
                     f"{bar(lengths[quarters] / total)} | {rests[quarters]} | "
                     + " | ".join(str(by_group[n][quarters]) for n in names) + " |")
    files.write_text(folder / "README.md", "\n".join(lines) + "\n")
    print(f"{folder / 'README.md'}: {len(songs)} songs, {total} events, {beats:g} beats")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("dataset"))
