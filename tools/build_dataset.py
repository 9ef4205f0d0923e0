"""Rebuild the starter dataset in dataset/ from public-domain melodies in music21's corpus.

Each melody goes through the same path as `synth import`: music21 writes it as a MIDI file,
`synth.music.midi.import_midi` turns that into events (class and length). music21 is needed only
here, at build time (`pip install -e .[dataset]`). The Essen folk-song collection is reserved
for independent evaluation and is never read.

A beat is the MIDI file's quarter note (music21 writes ticks per quarter note and import reads
ticks per beat), in every metre: a 6/8 jig's eighths are half beats, a 3/2 chorale's half
notes two beats. Before export each melody is made playable as written: repeats expanded (as
music21's MIDI export always does); ties joined (a tie between two different pitches, a slip
in some ABC transcriptions, is dropped rather than joined); grace notes left out (they take no
time on the page, and music21 writes each as a note-off before its note-on, which import
would hold to the end of the file); a note under a fermata held twice as long, at most
8 beats (music21's MIDI export ignores fermatas); a note over 8 beats held 8 beats with the
music after it brought forward, so no long rest is left behind (SPEC section 2). Silence after
the last note is cut. The build overwrites the songs of an earlier build and removes those it
no longer picks (files whose source is the music21 corpus); other songs in the folder stay.

    python tools/build_dataset.py [--out dataset] [--chorales 45] [--tunes 45] [--airs 20]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from synth import files
from synth.music import midi, songs
from synth.music.events import MAX_QUARTERS, QUARTERS_PER_BEAT
from synth.music.notes import REST

FORBIDDEN = "essenFolksong"
MAX_BEATS = MAX_QUARTERS / QUARTERS_PER_BEAT  # the longest event, in quarter notes (beats)
FERMATA_FACTOR = 2
MADE_HERE = "music21 corpus"  # how every source line this script writes ends


@dataclass
class Prepared:
    """What making a melody playable did to it, for the build log."""

    graces: int = 0  # grace notes left out
    fermatas: int = 0  # notes held longer for a fermata
    shortened: int = 0  # notes over 8 beats held 8 beats


def corpus_paths(folder: str) -> list[Path]:
    from music21 import corpus

    paths = sorted(Path(p) for p in corpus.getPaths() if f"/{folder}/" in str(p))
    assert all(FORBIDDEN not in str(p) for p in paths)
    return paths


def melody_scores():
    """Yield (kind, title, source, music21 stream of one melody line) in a fixed order."""
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
               f"J. S. Bach, chorale {path.stem} soprano line, {MADE_HERE}", score.parts[0])
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
                    yield kind, title, f"{label}, {path.name}, {MADE_HERE}", score


def playable(melody):
    """The melody as one flat stream of notes (and chords) at the times they sound, with the
    changes the module docstring lists; returns the stream and what was changed."""
    from music21 import expressions, stream

    done = Prepared()
    if melody[stream.Measure] or melody[stream.Part]:
        melody = melody.expandRepeats()  # raises on scores music21's own export cannot play
    flat = melody.flatten()
    fermatas = {n.offset for n in flat.notes
                if any(isinstance(x, expressions.Fermata) for x in n.expressions)}
    untie_mismatched(flat)
    out = stream.Stream()
    shift = 0.0
    for note in flat.stripTies(matchByPitch=True).notes:
        if note.duration.isGrace:
            done.graces += 1
            continue
        start, length = note.offset, note.quarterLength
        if any(start <= f < start + length for f in fermatas):
            done.fermatas += 1
            length = max(length, min(length * FERMATA_FACTOR, MAX_BEATS))
        if length > MAX_BEATS:
            done.shortened += 1
            length = MAX_BEATS
        copy = note.__class__(note.pitches if note.isChord else note.pitch)
        copy.quarterLength = length
        out.insert(start + shift, copy)
        shift += length - note.quarterLength
    return out, done


def untie_mismatched(flat) -> None:
    """Drop ties between notes of different pitch (some ABC transcriptions write `G3-A`, a
    slur), which music21's stripTies would otherwise join into one note of the first pitch."""
    notes = list(flat.notes)
    for note, after in zip(notes, notes[1:]):
        if note.tie is not None and note.tie.type in ("start", "continue") \
                and [p.ps for p in note.pitches] != [p.ps for p in after.pitches]:
            note.tie = None
            if after.tie is not None and after.tie.type == "stop":
                after.tie = None


def free_name(folder: Path, name: str, taken: set[Path]) -> str:
    """`name`, or `name-2`, `-3`, ...: the first neither written by this build yet nor held
    by a song of someone else's (a file of an earlier build is overwritten)."""
    candidate, number = name, 2
    while folder / f"{candidate}.txt" in taken or not ours(folder / f"{candidate}.txt"):
        candidate, number = f"{name}-{number}", number + 1
    return candidate


def ours(path: Path) -> bool:
    """True if `path` is free or a song an earlier build of this script made."""
    return not path.exists() or songs.read_song(path).source.endswith(MADE_HERE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dataset"))
    parser.add_argument("--chorales", type=int, default=45)
    parser.add_argument("--tunes", type=int, default=45)
    parser.add_argument("--airs", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=320, help="most events in a song")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = {"chorale": args.chorales, "tune": args.tunes, "air": args.airs}
    taken = {kind: 0 for kind in wanted}
    seen: set[tuple[int, ...]] = set()  # the same pitches in another rhythm are a duplicate
    written: set[Path] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for kind, title, source, melody in melody_scores():
            if taken[kind] >= wanted[kind]:
                if all(taken[k] >= wanted[k] for k in wanted):
                    break
                continue
            midi_path = Path(tmp) / "melody.mid"
            try:
                line, done = playable(melody)
                line.write("midi", fp=str(midi_path))
                song, report = midi.import_midi(midi_path)
            except Exception as exc:  # a piece music21 cannot export is skipped, not fatal
                print(f"skip {title}: {exc}")
                continue
            while song.events and song.events[-1].cls == REST:
                song.events.pop()  # silence after the last note is not part of the song
            key = tuple(song.classes)
            if key in seen or not 24 <= len(song.events) <= args.max_tokens:
                continue
            seen.add(key)
            song.title, song.source, song.bpm = title, source, None
            out = args.out / f"{free_name(args.out, files.slug(title), written)}.txt"
            songs.write_song(out, song)
            written.add(out)
            taken[kind] += 1
            print(f"{out}: {len(song.events)} events, {song.beats:g} beats, "
                  f"folded {report.folded}, dropped {report.dropped}, rests {report.rests}, "
                  f"moved {report.moved}, clamped {report.clamped}, graces {done.graces}, "
                  f"fermatas {done.fermatas}, shortened {done.shortened}")
    for stale in songs.song_paths(args.out):
        if stale not in written and ours(stale):
            stale.unlink()  # a song an earlier build made that the rules no longer pick
            print(f"removed {stale}")
    print(taken)


if __name__ == "__main__":
    main()
