"""Song files and the dataset folder (SPEC section 3): read, validate strictly, write atomically.

A song file holds whitespace-separated classes 0-24; lines starting with '#' are comments, and
'# title:', '# source:' and '# bpm:' comments carry the song's metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from synth import files
from synth.errors import SynthError
from synth.notes import NUM_CLASSES, REST

DEFAULT_BPM = 150.0
MIN_BPM, MAX_BPM = 20.0, 400.0
TOKENS_PER_LINE = 16
MAX_PROBLEMS = 10  # per file: enough to see the pattern, not a wall of text


@dataclass
class Song:
    """A melody: one class per step, plus what the file says about it."""

    tokens: list[int]
    title: str = ""
    source: str = ""
    bpm: float | None = None
    path: Path | None = None
    comments: list[str] = field(default_factory=list)  # other '#' lines, kept on rewrite

    @property
    def name(self) -> str:
        return self.title or (self.path.stem if self.path else "untitled")


def check_bpm(bpm: float, where: str = "--bpm") -> float:
    """A tempo a musician could mean; anything else is an error naming where it came from."""
    if not MIN_BPM <= bpm <= MAX_BPM:
        raise SynthError(f"{where}: tempo {bpm:g} is out of range: expected {MIN_BPM:g}-{MAX_BPM:g}")
    return bpm


def parse_song(text: str, path: Path | str = "<text>") -> Song:
    """Parse a song file's text, raising SynthError with every problem as file:line:column."""
    problems = _problems_and_song(text, Path(path))
    if isinstance(problems, Song):
        return problems
    raise SynthError("\n".join(problems))


def _problems_and_song(text: str, path: Path) -> Song | list[str]:
    tokens: list[int] = []
    problems: list[str] = []
    song = Song(tokens=tokens, path=path)
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            _read_comment(song, stripped, f"{path}:{line_no}:{line.index('#') + 1}", problems)
            continue
        for match in re.finditer(r"\S+", line):
            word, where = match.group(), f"{path}:{line_no}:{match.start() + 1}"
            if word.isascii() and word.isdigit() and int(word) < NUM_CLASSES:
                tokens.append(int(word))
            elif word.isascii() and word.isdigit():
                problems.append(f"{where}: class {_shorten(word)} is out of range: expected 0-24")
            else:
                problems.append(f"{where}: '{_shorten(word)}' is not a class: expected an "
                                "integer 0-24 (0 = rest, 1-24 = C3-B4)")
    if not tokens and not problems:
        problems.append(f"{path}:1:1: the song holds no notes: expected integers 0-24")
    if len(problems) > MAX_PROBLEMS:
        hidden = len(problems) - MAX_PROBLEMS
        problems = problems[:MAX_PROBLEMS] + [f"{path}: … and {hidden} more problems"]
    return problems or song


def _read_comment(song: Song, comment: str, where: str, problems: list[str]) -> None:
    body = comment.lstrip("#").strip()
    key, _, value = body.partition(":")
    key, value = key.strip().lower(), value.strip()
    if key == "title" and value:
        song.title = value
    elif key == "source" and value:
        song.source = value
    elif key == "bpm" and value:
        try:
            song.bpm = check_bpm(float(value), where)
        except ValueError:
            problems.append(f"{where}: bpm '{_shorten(value)}' is not a number: expected "
                            f"{MIN_BPM:g}-{MAX_BPM:g}")
        except SynthError as exc:
            problems.append(str(exc))
    else:
        song.comments.append(comment)


def _shorten(text: str, limit: int = 20) -> str:
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_text(path: Path) -> str:
    """A file's text as UTF-8, or a SynthError that names the file."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SynthError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SynthError(f"{path}: is a folder, expected a song file") from None
    except OSError as exc:
        raise SynthError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SynthError(f"{path}:{line}:{column}: byte 0x{data[exc.start]:02x} is not text: "
                         "expected a UTF-8 text file of integers 0-24") from None


def read_song(path: Path) -> Song:
    """Read and validate one song file."""
    return parse_song(read_text(path), path)


def format_song(song: Song) -> str:
    """The text of a song file: metadata comments, then 16 tokens a line."""
    lines = []
    if song.title:
        lines.append(f"# title: {song.title}")
    if song.source:
        lines.append(f"# source: {song.source}")
    if song.bpm is not None:
        lines.append(f"# bpm: {song.bpm:g}")
    lines.extend(song.comments)
    for start in range(0, len(song.tokens), TOKENS_PER_LINE):
        lines.append(" ".join(str(t) for t in song.tokens[start : start + TOKENS_PER_LINE]))
    return "\n".join(lines) + "\n"


def write_song(path: Path, song: Song) -> None:
    """Write a song file atomically, after checking every token is a class."""
    bad = [t for t in song.tokens if not (isinstance(t, int) and 0 <= t < NUM_CLASSES)]
    if bad:
        raise SynthError(f"{path}: cannot save class {bad[0]!r}: expected integers 0-24")
    if not song.tokens:
        raise SynthError(f"{path}: cannot save a song with no notes")
    files.write_text(path, format_song(song))


def song_paths(folder: Path) -> list[Path]:
    """The song files of a dataset folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SynthError(f"{folder}: no such folder: expected a dataset folder of .txt songs")
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and p.name != "README.txt")


def load_dataset(folder: Path) -> list[Song]:
    """Every song of a dataset folder; if any file is bad, one error listing all problems."""
    paths = song_paths(folder)
    if not paths:
        raise SynthError(f"{folder}: no song files (*.txt) found: record or import some first")
    songs: list[Song] = []
    problems: list[str] = []
    for path in paths:
        try:
            songs.append(parse_song(read_text(path), path))
        except SynthError as exc:
            problems.extend(str(exc).splitlines())
    if problems:
        raise SynthError("\n".join(problems))
    return songs


def transpositions(tokens: Sequence[int]) -> list[list[int]]:
    """Every transposition of a song that keeps all its notes inside C3-B4 (itself included)."""
    pitches = [t for t in tokens if t != REST]
    if not pitches:
        return [list(tokens)]
    low, high = min(pitches), max(pitches)
    return [[t if t == REST else t + shift for t in tokens]
            for shift in range(1 - low, NUM_CLASSES - high)]
