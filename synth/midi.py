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
from synth.notes import HIGHEST_MIDI, LOWEST_MIDI, REST, class_to_midi, midi_to_class
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
        tick = 0
        sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and (first_tempo is None or tick < first_tempo[0]):
                first_tempo = (tick, msg.tempo)
            if msg.type not in ("note_on", "note_off") or msg.channel == DRUM_CHANNEL:
                continue
            key = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                sounding.setdefault(key, []).append((tick, msg.velocity))
            elif sounding.get(key):
                start, velocity = sounding[key].pop(0)
                notes.append(Note(start / tpb, tick / tpb, msg.note, velocity))
        for (_, pitch), starts in sounding.items():  # never released: ends with its track
            notes.extend(Note(s / tpb, max(tick, s) / tpb, pitch, v) for s, v in starts)
    tempo = first_tempo[1] if first_tempo else 500_000
    bpm = round(mido.tempo2bpm(tempo), 2) if tempo > 0 else 120.0
    return notes, bpm


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


def notes_to_tokens(melody: Sequence[Note], report: ImportReport | None = None) -> list[int]:
    """Tokens for a monophonic line of notes (times in steps): shifted, folded, rests added."""
    report = report or ImportReport(path=Path("<notes>"))
    if not melody:
        return []
    octaves = best_octave_shift([n.pitch for n in melody])
    report.octaves = octaves
    tokens: list[int] = []
    previous_end: float | None = None
    for note in melody:
        if previous_end is not None:
            rests = rests_for_gap(note.start - previous_end)
            tokens.extend([REST] * rests)
            report.rests += rests
        shifted = note.pitch + 12 * octaves
        folded = fold_into_range(shifted)
        report.folded += folded != shifted
        tokens.append(midi_to_class(folded))
        report.kept += 1
        previous_end = note.end
    return tokens


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
