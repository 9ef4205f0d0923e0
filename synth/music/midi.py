"""MIDI files in and out (mido): melody extraction for `synth import`, export for `--midi`.

Importing keeps one melody line (the highest sounding note where notes overlap), shifts it by
whole octaves into C3-B4, folds stray notes in by octave, and turns it into events: onsets and
note ends on the quarter-beat grid of the file's own beats (ticks per beat, so the tempo does
not change them), silences as rests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from synth import files
from synth.errors import SynthError
from synth.music.events import MAX_QUARTERS, QUARTERS_PER_BEAT, Event, rests, starts, to_grid
from synth.music.notes import HIGHEST_MIDI, LOWEST_MIDI, class_to_midi, in_range, midi_to_class
from synth.music.songs import MAX_EVENTS, Song, check_bpm, too_long

if TYPE_CHECKING:
    import mido  # imported by the functions that read or make MIDI: a song file needs none

DRUM_CHANNEL = 9  # General MIDI channel 10 carries percussion, never melody
TICKS_PER_BEAT = 480
DEFAULT_VELOCITY = 80
CHORD_SECONDS = 0.04  # keys struck closer together than this are one chord
TIME_SLACK = 1e-6  # beats: a silence of exactly half a beat, measured in floats, is half a beat


@dataclass(frozen=True)
class Note:
    """One sounding note; times in beats from the start of the file (or take)."""

    start: float
    end: float
    pitch: int
    velocity: int = DEFAULT_VELOCITY


@dataclass
class ImportReport:
    """What `import` did to one file, for the user to see."""

    path: Path
    kept: int = 0  # melody notes that became events
    folded: int = 0  # notes moved by an octave (beyond the whole-song shift) into C3-B4
    dropped: int = 0  # notes hidden under a higher note, or merged for want of grid points
    rests: int = 0  # rest events added for silent gaps
    moved: int = 0  # lengths changed by quantising to the quarter-beat grid
    clamped: int = 0  # notes longer than 8 beats, held 8 beats (the rest of the time a rest)
    octaves: int = 0  # whole-song shift, in octaves
    bpm: float = 120.0
    out: Path | None = None


def read_midi(path: Path) -> mido.MidiFile:
    """Open a MIDI file, turning every way it can be broken into one clear error."""
    import mido

    path = Path(path)
    if not path.is_file():
        raise SynthError(f"{path}: no such file")
    try:
        midi = mido.MidiFile(path, clip=True)
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError, ...
        reason = str(exc).strip() or type(exc).__name__
        raise SynthError(f"{path}: not a readable MIDI file ({reason})") from None
    if midi.ticks_per_beat <= 0:
        raise SynthError(f"{path}: not a usable MIDI file (ticks per beat is "
                         f"{midi.ticks_per_beat}, expected a positive number)")
    return midi


def file_notes(midi: mido.MidiFile) -> tuple[list[Note], float]:
    """All pitched notes of every track (drums left out) and the file's first tempo in bpm."""
    import mido

    notes: list[Note] = []
    first_tempo: tuple[int, int] | None = None  # (tick, microseconds per beat)
    tpb = midi.ticks_per_beat
    for track in midi.tracks:
        timed = []
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and (first_tempo is None or tick < first_tempo[0]):
                first_tempo = (tick, msg.tempo)
            timed.append((tick / tpb, msg))
        notes.extend(pair_notes(timed, tick / tpb))
    tempo = first_tempo[1] if first_tempo else 500_000
    bpm = round(mido.tempo2bpm(tempo), 2) if tempo > 0 else 120.0
    return notes, bpm


def pair_notes(timed: Iterable[tuple[float, mido.Message]], end: float) -> list[Note]:
    """Notes from (time, message) pairs: each note-on meets the next note-off of its key.

    Drums are left out; a note never released lasts until `end`. Times keep their unit. A
    note-off that comes before its note-on at the same moment (how music21 writes a grace
    note) is a note of no length, left out rather than held to the end.
    """
    notes: list[Note] = []
    sounding: dict[tuple[int, int], list[tuple[float, int]]] = {}
    unmatched_off: dict[tuple[int, int], float] = {}  # key -> time of a note-off with no note
    for time, msg in timed:
        if msg.type not in ("note_on", "note_off") or msg.channel == DRUM_CHANNEL:
            continue
        key = (msg.channel, msg.note)
        if msg.type == "note_on" and msg.velocity > 0:
            if unmatched_off.pop(key, None) == time:
                continue
            sounding.setdefault(key, []).append((time, msg.velocity))
        elif not sounding.get(key):
            unmatched_off[key] = time
        else:
            start, velocity = sounding[key].pop(0)
            notes.append(Note(start, time, msg.note, velocity))
    for (_, pitch), held in sounding.items():
        notes.extend(Note(s, max(end, s), pitch, v) for s, v in held)
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def melody_line(notes: Iterable[Note]) -> tuple[list[Note], int]:
    """The highest sounding note at each onset; returns the melody and how many notes it hid."""
    melody: list[Note] = []
    dropped = 0
    for note in sorted(notes, key=lambda n: (n.start, -n.pitch)):
        if melody and melody[-1].start == note.start:
            dropped += 1  # a lower note of a chord
            continue
        if melody and melody[-1].end > note.start and melody[-1].pitch > note.pitch:
            dropped += 1  # starts under a higher note that still sounds
            continue
        if melody and melody[-1].end > note.start:  # a higher note cuts the melody note short
            last = melody[-1]
            melody[-1] = Note(last.start, note.start, last.pitch, last.velocity)
        melody.append(note)
    return melody, dropped


def best_octave_shift(pitches: Sequence[int]) -> int:
    """The whole-octave shift that puts the most notes in C3-B4 (the smallest shift on ties)."""
    def score(octaves: int) -> tuple[int, int]:
        inside = sum(LOWEST_MIDI <= p + 12 * octaves <= HIGHEST_MIDI for p in pitches)
        return inside, -abs(octaves)

    return max(range(-10, 11), key=score)


def fold_into_range(pitch: int) -> int:
    """Move a pitch by whole octaves into C3-B4."""
    while pitch < LOWEST_MIDI:
        pitch += 12
    while pitch > HIGHEST_MIDI:
        pitch -= 12
    return pitch


def on_the_grid(melody: Sequence[Note]) -> tuple[list[tuple[Note, int]], list[Note]]:
    """Each note of a line with its onset on the quarter-beat grid, and the notes merged.

    A note lands on its nearest grid point. When the next note lands there too, the note
    moves back a point if that point is free (the note before it gives up the time); where
    there is no room it is merged: left out, the note before it lasting through its time.
    Later notes only ever move or merge the last note placed, so a line played so far is
    placed as the whole line will be, but for its last note.
    """
    placed: list[tuple[Note, int]] = []
    merged: list[Note] = []
    for note in melody:
        point = to_grid(note.start)
        if placed and placed[-1][1] >= point:  # the last note placed sits on this point
            last = placed.pop()
            if not placed or placed[-1][1] < point - 1:
                placed.append((last[0], point - 1))
            else:
                merged.append(last[0])
        placed.append((note, point))
    return placed, merged


def line_events(melody: Sequence[Note], report: ImportReport | None = None,
                shift: bool = True, min_rest: float = 0.0) -> list[Event]:
    """Events of a monophonic line of notes (times in beats), on the quarter-beat grid.

    Onsets go to the grid as `on_the_grid` places them; notes with no room are merged
    (counted as dropped in `report`). Then `grid_events`.
    """
    report = report or ImportReport(path=Path("<notes>"))
    line, merged = on_the_grid(melody)
    report.dropped += len(merged)
    return grid_events(line, report, shift, min_rest)


def grid_events(line: Sequence[tuple[Note, int]], report: ImportReport | None = None,
                shift: bool = True, min_rest: float = 0.0) -> list[Event]:
    """Events of a line of notes placed on the grid (each with its onset in quarter beats).

    A note lasts until the next onset, unless its key was let go and silence follows for at
    least `min_rest` beats (and a whole grid step): then it lasts as long as it was held and
    the silence is a rest. The last note lasts as long as it was held. Notes longer than
    8 beats are held 8 beats and the rest of their time is a rest. With `shift` the line
    moves by whole octaves into C3-B4 and stray notes fold in by octave; without it the
    notes must already be in range.
    """
    report = report or ImportReport(path=Path("<notes>"))
    if not line:
        return []
    octaves = best_octave_shift([n.pitch for n, _ in line]) if shift else 0
    report.octaves = octaves
    events: list[Event] = []
    for index, (note, onset) in enumerate(line):
        after = line[index + 1] if index + 1 < len(line) else None
        held = max(to_grid(note.end) - onset, 1)
        if after is None:
            length, exact, silence = held, note.end - note.start, 0
        elif held < after[1] - onset and after[0].start - note.end >= min_rest - TIME_SLACK:
            length, exact = held, note.end - note.start
            silence = after[1] - onset - held
        else:
            length, exact, silence = after[1] - onset, after[0].start - note.start, 0
        report.moved += abs(length - exact * QUARTERS_PER_BEAT) > 1e-6
        if length > MAX_QUARTERS:
            report.clamped += 1
            silence += length - MAX_QUARTERS
            length = MAX_QUARTERS
        shifted = note.pitch + 12 * octaves
        folded = fold_into_range(shifted) if shift else shifted
        report.folded += folded != shifted
        events.append(Event(midi_to_class(folded), length))
        report.kept += 1
        gap = rests(silence)
        events.extend(gap)
        report.rests += len(gap)
    return events


def chords_to_top(notes: Iterable[Note], window: float) -> tuple[list[Note], int]:
    """Keys struck within `window` (in the notes' time unit) of the first of them are one
    chord: its top note, starting with the first key. Returns the notes and how many went."""
    out: list[Note] = []
    group: list[Note] = []
    merged = 0

    def flush() -> None:
        nonlocal merged
        if group:
            top = max(group, key=lambda n: (n.pitch, -n.start))
            out.append(Note(group[0].start, top.end, top.pitch, top.velocity))
            merged += len(group) - 1

    for note in sorted(notes, key=lambda n: (n.start, n.pitch)):
        if group and note.start - group[0].start > window:
            flush()
            group = []
        group.append(note)
    flush()
    return out, merged


def played_line(notes: Iterable[Note], chord: float = 0.0) -> tuple[list[Note], list[Note]]:
    """A played take as one line, one note per key press in order: keys struck within `chord`
    of each other are one chord (its top note), and a press while another key is held ends
    that note (last-note priority, as on a monophonic synth). Returns the line and the notes
    outside C3-B4, which are left out of it."""
    ordered = sorted(notes, key=lambda n: (n.start, n.pitch))
    outside = [n for n in ordered if not in_range(n.pitch)]
    inside, _ = chords_to_top([n for n in ordered if in_range(n.pitch)], chord)
    line = [Note(n.start, min(n.end, after.start), n.pitch, n.velocity)
            for n, after in zip(inside, inside[1:])]
    return line + inside[-1:], outside


def take_to_midi(timed: Iterable[tuple[float, mido.Message]], bpm: float,
                 name: str = "") -> mido.MidiFile:
    """A raw take as a type-0 MIDI file: every message at its time (seconds from the start of
    the take), velocities and controllers kept, tempo set to the take's bpm."""
    import mido

    check_bpm(bpm)
    tempo = mido.bpm2tempo(bpm)
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    if name:
        track.append(mido.MetaMessage("track_name", name=name, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    previous = 0
    for seconds, msg in timed:
        tick = max(round(mido.second2tick(max(seconds, 0.0), TICKS_PER_BEAT, tempo)), previous)
        track.append(msg.copy(time=tick - previous))
        previous = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return midi


def import_midi(path: Path) -> tuple[Song, ImportReport]:
    """Turn one MIDI file into a song; raises SynthError for a broken or empty file."""
    path = Path(path)
    midi = read_midi(path)
    try:
        notes, bpm = file_notes(midi)
    except (AttributeError, TypeError, ValueError) as exc:
        raise SynthError(f"{path}: not a usable MIDI file ({exc})") from None
    if not notes:
        raise SynthError(f"{path}: holds no notes to import (drums on channel 10 are ignored)")
    melody, dropped = melody_line(notes)
    if len(melody) > MAX_EVENTS:  # every melody note is an event: refused before the work
        raise too_long(path)
    report = ImportReport(path=path, dropped=dropped, bpm=bpm)
    events = line_events(melody, report)
    if len(events) > MAX_EVENTS:  # the rests between the notes made it too long
        raise too_long(path)
    title = _track_name(midi) or path.stem.replace("_", " ")
    song = Song(events=events, title=title, source=f"imported from {path.name}",
                bpm=bpm if 20 <= bpm <= 400 else None)
    return song, report


def read_melody(path: Path) -> Song:
    """A song file (.txt) or the melody of a MIDI file (.mid, .midi)."""
    from synth.music.songs import read_song

    if Path(path).suffix.lower() in (".mid", ".midi"):
        return import_midi(path)[0]
    return read_song(path)


def parts(path: Path) -> list[str]:
    """The names of a MIDI file's tracks that hold notes (`track N` where unnamed)."""
    found = []
    for number, track in enumerate(read_midi(path).tracks, 1):
        if any(m.type == "note_on" and m.channel != DRUM_CHANNEL for m in track):
            found.append(next((m.name.strip() for m in track
                               if m.type == "track_name" and m.name.strip()), f"track {number}"))
    return found


def _track_name(midi: mido.MidiFile) -> str:
    for track in midi.tracks:
        for msg in track:
            if msg.type == "track_name" and msg.name.strip():
                return msg.name.strip()
    return ""


def find_midi_files(paths: Iterable[Path]) -> list[Path]:
    """The MIDI files named, with folders searched recursively for *.mid and *.midi."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and p.suffix.lower() in (".mid", ".midi")))
        else:
            found.append(path)
    return found


def events_to_midi(events: Sequence[Event], bpm: float,
                   velocities: Sequence[int] | None = None) -> mido.MidiFile:
    """A type-0 MIDI file of a song: each note strikes at its start and is released after its
    length; rests are silence."""
    import mido

    check_bpm(bpm)
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.Message("program_change", program=0, time=0))
    tick = TICKS_PER_BEAT // QUARTERS_PER_BEAT
    now = 0
    for index, (event, start) in enumerate(zip(events, starts(events))):
        if event.is_rest:
            continue
        velocity = velocities[index] if velocities is not None else DEFAULT_VELOCITY
        note = class_to_midi(event.cls)
        track.append(mido.Message("note_on", note=note, velocity=int(velocity),
                                  time=start * tick - now))
        track.append(mido.Message("note_off", note=note, velocity=0,
                                  time=event.quarters * tick))
        now = (start + event.quarters) * tick
    end = sum(e.quarters for e in events) * tick
    track.append(mido.MetaMessage("end_of_track", time=max(end - now, 0)))
    return midi


def write_midi(path: Path, midi: mido.MidiFile, exclusive: bool = False) -> None:
    """Save a MIDI file atomically and durably; `exclusive`: only as a new file."""
    files.write_with(path, lambda tmp: midi.save(tmp), exclusive)
