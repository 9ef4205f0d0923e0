"""Song files and the dataset folder (SPEC section 3): read, validate strictly, write atomically.

A song file holds whitespace-separated events, each `C` or `C:L`: a class 0-24 and optionally
its length in beats (`13:2`, `0:0.5`, `15:3/2`); `C` alone lasts one beat, and writers leave
`:1` out, so a song without rhythm is still plain integers. Lines starting with '#' are
comments, and '# title:', '# source:' and '# bpm:' comments carry the song's metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from synth import files
from synth.errors import SynthError
from synth.music.events import (BEAT, LENGTHS_EXPECTED, Event, check_event, format_event, parse_length,
                          total_beats)
from synth.music.notes import NUM_CLASSES, REST

DEFAULT_BPM = 150.0
MIN_BPM, MAX_BPM = 20.0, 400.0
EVENTS_PER_LINE = 16
MAX_PROBLEMS = 10  # per file: enough to see the pattern, not a wall of text
MAX_EVENTS = 100_000  # the most a song may hold: what compose may write, days of music at most


@dataclass
class Song:
    """A melody: its events (class and length), plus what the file says about it."""

    events: list[Event]
    title: str = ""
    source: str = ""
    bpm: float | None = None
    path: Path | None = None
    comments: list[str] = field(default_factory=list)  # other '#' lines, kept on rewrite

    @property
    def name(self) -> str:
        return self.title or (self.path.stem if self.path else "untitled")

    @property
    def classes(self) -> list[int]:
        return [e.cls for e in self.events]

    @property
    def beats(self) -> float:
        return total_beats(self.events)

    def seconds(self, bpm: float | None = None) -> float:
        return self.beats * 60.0 / (bpm or self.bpm or DEFAULT_BPM)


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
    events: list[Event] = []
    problems: list[str] = []
    song = Song(events=events, path=path)
    for line_no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            _read_comment(song, stripped, f"{path}:{line_no}:{line.index('#') + 1}", problems)
            continue
        for match in re.finditer(r"\S+", line):
            word, column = match.group(), match.start() + 1
            cls_text, colon, length_text = word.partition(":")
            where = f"{path}:{line_no}:{column}"
            if cls_text.isascii() and cls_text.isdigit() and int(cls_text) < NUM_CLASSES:
                cls = int(cls_text)
            elif cls_text.isascii() and cls_text.isdigit():
                problems.append(f"{where}: class {_shorten(cls_text)} is out of range: "
                                "expected 0-24")
                continue
            else:
                problems.append(f"{where}: '{_shorten(word)}' is not an event: expected a class "
                                "0-24 (0 = rest, 1-24 = C3-B4), optionally with a length in "
                                "beats such as 13:2")
                continue
            quarters = BEAT
            if colon:
                try:
                    quarters = parse_length(length_text)
                except SynthError as exc:
                    where = f"{path}:{line_no}:{column + len(cls_text) + 1}"
                    problems.append(f"{where}: {_shorten_message(str(exc), length_text)}")
                    continue
            events.append(Event(cls, quarters))
            if len(events) > MAX_EVENTS:
                raise too_long(path)
    if not events and not problems:
        problems.append(f"{path}:1:1: the song holds no notes: expected events like 13 or 13:2")
    if len(problems) > MAX_PROBLEMS:
        hidden = len(problems) - MAX_PROBLEMS
        problems = problems[:MAX_PROBLEMS] + [f"{path}: … and {hidden} more problems"]
    return problems or song


def too_long(path: Path) -> SynthError:
    """The error for a song of more events than compose may write: refused before any work."""
    return SynthError(f"{path}: holds more than {MAX_EVENTS} events, the most a song may hold "
                      "(and compose writes): split it into shorter songs")


def _shorten_message(message: str, value: str) -> str:
    """A length error with an overlong or unprintable value shortened as class errors are."""
    if not value.strip():
        return f"length is missing after ':': {LENGTHS_EXPECTED}"
    return message.replace(value.strip(), _shorten(value.strip()))


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
                         "expected a UTF-8 text file of events like 13 or 13:2") from None


def read_song(path: Path) -> Song:
    """Read and validate one song file."""
    return parse_song(read_text(path), path)


def format_song(song: Song) -> str:
    """The text of a song file: metadata comments, then 16 events a line (`:1` left out)."""
    lines = []
    if song.title:
        lines.append(f"# title: {song.title}")
    if song.source:
        lines.append(f"# source: {song.source}")
    if song.bpm is not None:
        lines.append(f"# bpm: {song.bpm:g}")
    lines.extend(song.comments)
    for start in range(0, len(song.events), EVENTS_PER_LINE):
        lines.append(" ".join(format_event(e) for e in song.events[start : start + EVENTS_PER_LINE]))
    return "\n".join(lines) + "\n"


def check_song(events: Sequence[Event], path: Path) -> list[Event]:
    """The events of a song about to be saved as `path`, each checked; one error naming the
    file if any is bad or there are none."""
    try:
        checked = [check_event(e) for e in events]
    except SynthError as exc:
        raise SynthError(f"{path}: cannot save: {exc}") from None
    if not checked:
        raise SynthError(f"{path}: cannot save a song with no notes")
    return checked


def write_song(path: Path, song: Song, exclusive: bool = False) -> None:
    """Write a song file atomically and durably, after checking every event; `exclusive`:
    only as a new file (files.NameTaken if the name is taken)."""
    song.events = check_song(song.events, path)
    files.write_text(path, format_song(song), exclusive)


def song_paths(folder: Path) -> list[Path]:
    """The song files of a dataset folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SynthError(f"{folder}: no such folder: expected a dataset folder of .txt songs")
    # Names starting with a dot are hidden: a write cut short by a kill (files.atomic_path).
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and p.name != "README.txt"
                  and not p.name.startswith("."))


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


def transposition_shifts(classes: Sequence[int]) -> range:
    """The shifts in semitones that keep every note of a song inside C3-B4 (0 among them)."""
    pitches = [c for c in classes if c != REST]
    if not pitches:
        return range(1)
    return range(1 - min(pitches), NUM_CLASSES - max(pitches))


def transpositions(events: Sequence[Event]) -> list[list[Event]]:
    """Every transposition of a song that keeps all its notes inside C3-B4 (itself included);
    lengths are unchanged."""
    return [[e if e.cls == REST else Event(e.cls + shift, e.quarters) for e in events]
            for shift in transposition_shifts([e.cls for e in events])]


def by_source(songs: Sequence[Song], sources: Sequence[str]) -> list[Song]:
    """The songs whose `# source:` line contains any of `sources` (ignoring case): a style's
    share of a dataset. No song matching is an error that lists the sources there are."""
    wanted = [s.strip().casefold() for s in sources]
    if any(not s for s in wanted):
        raise SynthError("--source '': expected some text of a song's '# source:' line")
    kept = [song for song in songs if any(w in song.source.casefold() for w in wanted)]
    if not kept:
        # A source's first part names it ("J. S. Bach, chorale bwv10.7 ..."): one entry each.
        there = sorted({song.source.split(",")[0].strip() for song in songs if song.source})
        more = f"; … and {len(there) - 5} more" if len(there) > 5 else ""
        shown = "; ".join(there[:5]) + more
        raise SynthError(f"--source {' / '.join(sources)}: no song's '# source:' line contains "
                         f"it (sources in the dataset: {shown or 'none'})")
    return kept
