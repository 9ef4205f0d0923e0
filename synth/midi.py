"""MIDI files in and out (mido): melody extraction for `synth import`, export for `--midi`.

Importing keeps one melody line (the highest sounding note where notes overlap), shifts it by
whole octaves into C3-B4, folds stray notes in by octave and turns silent gaps into rests, one
rest per whole step (beat) of silence at the file's tempo.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mido

from synth import files
from synth.errors import SynthError
from synth.notes import (HIGHEST_MIDI, LOWEST_MIDI, REST, class_to_midi, in_range,
                         midi_to_class)
from synth.songs import Song, check_bpm

DRUM_CHANNEL = 9  # General MIDI channel 10 carries percussion, never melody
TICKS_PER_BEAT = 480
DEFAULT_VELOCITY = 80
# A silence shorter than three quarters of a step is articulation, not a rest.
REST_TOLERANCE = 0.25


@dataclass(frozen=True)
class Note:
    """One sounding note; times in beats (steps) from the start of the file."""

    start: float
    end: float
    pitch: int
    velocity: int = DEFAULT_VELOCITY


@dataclass
class ImportReport:
    """What `import` did to one file, for the user to see."""

    path: Path
    kept: int = 0  # melody notes that became tokens
    folded: int = 0  # notes moved by an octave (beyond the whole-song shift) into C3-B4
    dropped: int = 0  # notes hidden under a higher note
    rests: int = 0  # rest tokens added for silent gaps
    octaves: int = 0  # whole-song shift, in octaves
    bpm: float = 120.0
    out: Path | None = None


def read_midi(path: Path) -> mido.MidiFile:
    """Open a MIDI file, turning every way it can be broken into one clear error."""
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

    Drums are left out; a note never released lasts until `end`. Times keep their unit.
    """
    notes: list[Note] = []
    sounding: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for time, msg in timed:
        if msg.type not in ("note_on", "note_off") or msg.channel == DRUM_CHANNEL:
            continue
        key = (msg.channel, msg.note)
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.setdefault(key, []).append((time, msg.velocity))
        elif sounding.get(key):
            start, velocity = sounding[key].pop(0)
            notes.append(Note(start, time, msg.note, velocity))
    for (_, pitch), starts in sounding.items():
        notes.extend(Note(s, max(end, s), pitch, v) for s, v in starts)
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


def rests_for_gap(gap_steps: float) -> int:
    """Rests for a silence of `gap_steps` steps: one per whole step, with a little tolerance."""
    if not math.isfinite(gap_steps) or gap_steps <= 0:
        return 0
    return int(math.floor(gap_steps + REST_TOLERANCE))


def rests_between(previous: Note, note: Note) -> int:
    """Rests between two notes of a line: one per whole step of silence, but never more than
    the onsets leave room for (a short staccato note in a one-step slot adds no rest)."""
    room = int(math.floor(note.start - previous.start + 0.5)) - 1  # steps between onsets
    return max(0, min(rests_for_gap(note.start - previous.end), room))


def notes_to_tokens(melody: Sequence[Note], report: ImportReport | None = None,
                    shift: bool = True) -> list[int]:
    """Tokens for a monophonic line of notes (times in steps), rests added for silences.

    With `shift` the line moves by whole octaves into C3-B4 and stray notes fold in by octave;
    without it the notes must already be in range.
    """
    report = report or ImportReport(path=Path("<notes>"))
    if not melody:
        return []
    octaves = best_octave_shift([n.pitch for n in melody]) if shift else 0
    report.octaves = octaves
    tokens: list[int] = []
    previous: Note | None = None
    for note in melody:
        if previous is not None:
            rests = rests_between(previous, note)
            tokens.extend([REST] * rests)
            report.rests += rests
        shifted = note.pitch + 12 * octaves
        folded = fold_into_range(shifted) if shift else shifted
        report.folded += folded != shifted
        tokens.append(midi_to_class(folded))
        report.kept += 1
        previous = note
    return tokens


def played_line(notes: Iterable[Note]) -> tuple[list[Note], list[Note]]:
    """A played take as one line, one note per key press in order: a press while another key
    is held ends that note (last-note priority, as on a monophonic synth). Returns the line
    and the notes outside C3-B4, which are left out of it."""
    ordered = sorted(notes, key=lambda n: (n.start, n.pitch))
    outside = [n for n in ordered if not in_range(n.pitch)]
    inside = [n for n in ordered if in_range(n.pitch)]
    line = [Note(n.start, min(n.end, after.start), n.pitch, n.velocity)
            for n, after in zip(inside, inside[1:])]
    return line + inside[-1:], outside


def take_to_midi(timed: Iterable[tuple[float, mido.Message]], bpm: float,
                 name: str = "") -> mido.MidiFile:
    """A raw take as a type-0 MIDI file: every message at its time (seconds from the start of
    the take), velocities and controllers kept, tempo set to the take's bpm."""
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
    report = ImportReport(path=path, dropped=dropped, bpm=bpm)
    tokens = notes_to_tokens(melody, report)
    title = _track_name(midi) or path.stem.replace("_", " ")
    song = Song(tokens=tokens, title=title, source=f"imported from {path.name}",
                bpm=bpm if 20 <= bpm <= 400 else None)
    return song, report


def read_melody(path: Path) -> Song:
    """A song file (.txt) or the melody of a MIDI file (.mid, .midi)."""
    from synth.songs import read_song

    if Path(path).suffix.lower() in (".mid", ".midi"):
        return import_midi(path)[0]
    return read_song(path)


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


def tokens_to_midi(tokens: Sequence[int], bpm: float,
                   velocities: Sequence[int] | None = None) -> mido.MidiFile:
    """A type-0 MIDI file of a song: each note strikes on its step and lasts one step."""
    check_bpm(bpm)
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.Message("program_change", program=0, time=0))
    wait = 0
    for index, token in enumerate(tokens):
        if token == REST:
            wait += TICKS_PER_BEAT
            continue
        velocity = velocities[index] if velocities is not None else DEFAULT_VELOCITY
        note = class_to_midi(token)
        track.append(mido.Message("note_on", note=note, velocity=int(velocity), time=wait))
        track.append(mido.Message("note_off", note=note, velocity=0, time=TICKS_PER_BEAT))
        wait = 0
    track.append(mido.MetaMessage("end_of_track", time=wait))
    return midi


def write_midi(path: Path, midi: mido.MidiFile) -> None:
    """Save a MIDI file atomically."""
    files.write_with(path, lambda tmp: midi.save(tmp))
