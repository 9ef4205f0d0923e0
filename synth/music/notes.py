"""The vocabulary: class <-> note name <-> MIDI number, and primers (SPEC section 1).

Class 0 is a rest; classes 1..24 are C3..B4 chromatically, MIDI 48..71. Pure Python, no heavy
imports: every other module, on every path, may use this one.
"""

from __future__ import annotations

import re

from synth.errors import SynthError

REST = 0
NUM_CLASSES = 25
LOWEST_MIDI = 48  # C3 = class 1
HIGHEST_MIDI = 71  # B4 = class 24
MIDDLE_C = 60  # C4 = class 13

_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_LETTER_PITCH = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAME_RE = re.compile(r"^([A-Ga-g])([#b]{0,2})(-?[0-9]{1,2})$")
_REST_WORDS = {"-", "r", "rest", "."}


def class_to_midi(token: int) -> int:
    """The MIDI number of a pitch class (1..24)."""
    if not 1 <= token <= 24:
        raise SynthError(f"class {token} has no pitch: expected 1-24 (0 is a rest)")
    return LOWEST_MIDI - 1 + token


def midi_to_class(midi: int) -> int:
    """The class (1..24) of a MIDI note in C3..B4."""
    if not LOWEST_MIDI <= midi <= HIGHEST_MIDI:
        raise SynthError(
            f"MIDI note {midi} ({midi_name(midi)}) is outside C3-B4: expected MIDI 48-71"
        )
    return midi - LOWEST_MIDI + 1


def in_range(midi: int) -> bool:
    """Whether a MIDI note is one the vocabulary can hold."""
    return LOWEST_MIDI <= midi <= HIGHEST_MIDI


def midi_name(midi: int) -> str:
    """Scientific pitch name with sharps: 60 -> 'C4'."""
    return f"{_SHARP_NAMES[midi % 12]}{midi // 12 - 1}"


def class_name(token: int) -> str:
    """Note name of a class; a rest is '-'."""
    if token == REST:
        return "-"
    return midi_name(class_to_midi(token))


def parse_note_name(name: str) -> int:
    """MIDI number of a note name with sharps or flats ('C#3', 'Db3', 'Bb4', 'E#3')."""
    match = _NAME_RE.match(name.strip())
    if not match:
        raise SynthError(f"'{name}' is not a note name: expected a letter A-G, optional # or b, "
                         "and an octave, like C4, F#3 or Bb4")
    letter, accidentals, octave = match.groups()
    shift = accidentals.count("#") - accidentals.count("b")
    return (int(octave) + 1) * 12 + _LETTER_PITCH[letter.upper()] + shift


def parse_token(word: str) -> int:
    """One primer word: a class number (0-24), a rest ('-', 'rest') or a note name in C3-B4."""
    text = word.strip()
    if text.lower() in _REST_WORDS:
        return REST
    if re.fullmatch(r"-?[0-9]+", text):
        value = int(text)
        if not 0 <= value < NUM_CLASSES:
            raise SynthError(f"class {value} is out of range: expected 0-24")
        return value
    midi = parse_note_name(text)
    if not in_range(midi):
        raise SynthError(f"note {text} is outside C3-B4: expected a note from C3 to B4")
    return midi_to_class(midi)
