"""The library page's logic: the songs in dataset/ and out/ (and the recorded takes), their
events and audio, downloads, imports and composing, all through the same functions as the CLI.

Audio is rendered by the same piano and effects as `synth render`, on demand and block by
block, so memory stays flat whatever the song's length; a song composed here is saved in out/
as the CLI saves it.
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import struct
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth import api, files
from synth.learn import styles
from synth.learn.generate import MAX_SEED, Sampling
from synth.errors import SynthError
from synth.music.songs import DEFAULT_BPM
from synth.sound.effects import Effects
from synth.sound.piano import Performance
from synth.studio.paths import inside

TAKES = "dataset/takes"
MAX_UPLOAD = 2 * 2**20  # a MIDI file dropped on the page; real melodies are a few kB
MAX_NOTES = 2000  # events composed per request from the page


@dataclass
class Entry:
    """What a song file says, read once per version of the file."""

    title: str
    source: str
    events: int
    beats: float
    bpm: float | None
    seconds: float
    error: str = ""


class Library:
    """The songs under `root`, read through a cache keyed by each file's size and time."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._entries: dict[Path, tuple[tuple[int, int], Entry]] = {}
        self._models: dict[tuple[str, int], Any] = {}
        self._rendering: dict[str, Rendering] = {}

    # --- listing ------------------------------------------------------------------------

    def songs(self) -> list[dict]:
        """Every song: dataset/*.txt (with its take), out/ grouped by name, orphan takes."""
        items: list[dict] = []
        dataset, out, takes = (self.root / "dataset", self.root / "out", self.root / TAKES)
        take_stems = {p.stem: p for p in _files(takes, (".mid", ".midi"))}
        for path in _files(dataset, (".txt",)):
            if path.name == "README.txt":
                continue
            take = take_stems.pop(path.stem, None)
            items.append(self._item("dataset", path, take=take))
        for path in take_stems.values():
            items.append(self._item("takes", path, take=path))
        groups: dict[str, list[Path]] = {}
        for path in _files(out, (".txt", ".mid", ".midi", ".wav")):
            groups.setdefault(path.stem, []).append(path)
        for stem, paths in groups.items():
            by = {p.suffix.lower(): p for p in paths}
            song = by.get(".txt") or by.get(".mid") or by.get(".midi")
            items.append(self._item("out", song, wav=by.get(".wav"),
                                    midi=by.get(".mid") or by.get(".midi"),
                                    fallback=by.get(".wav")))
        return items

    def _item(self, section: str, song: Path | None, take: Path | None = None,
              wav: Path | None = None, midi: Path | None = None,
              fallback: Path | None = None) -> dict:
        main = song or fallback
        entry = self._entry(song) if song is not None else self._wav_entry(fallback)
        stat = main.stat()
        return {
            "id": self.rel(main.with_suffix("")), "section": section,
            "title": entry.title or main.stem, "source": entry.source, "events": entry.events,
            "beats": entry.beats, "bpm": entry.bpm, "seconds": entry.seconds,
            "song": self.rel(song) if song else None, "wav": self.rel(wav) if wav else None,
            "midi": self.rel(midi) if midi else None, "take": self.rel(take) if take else None,
            "error": entry.error, "modified": stat.st_mtime,
        }

    def rel(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def _entry(self, path: Path) -> Entry:
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._entries.get(path)
        if cached and cached[0] == key:
            return cached[1]
        try:
            song = api.read_song(path)
            entry = Entry(song.title, song.source, len(song.events), song.beats, song.bpm,
                          song.seconds())
        except SynthError as exc:
            entry = Entry(path.stem, "", 0, 0.0, None, 0.0, error=str(exc).splitlines()[0])
        self._entries[path] = (key, entry)
        return entry

    def _wav_entry(self, path: Path) -> Entry:
        import soundfile

        try:
            seconds = soundfile.info(str(path)).duration
        except Exception:  # an unreadable WAV still lists, with its error
            return Entry(path.stem, "", 0, 0.0, None, 0.0,
                         error=f"{path.name}: not a readable WAV")
        return Entry(path.stem, "audio only", 0, 0.0, None, seconds)

    # --- one song -----------------------------------------------------------------------

    def song(self, relative: str) -> dict:
        """A song's events for the piano roll and the player."""
        path = inside(self.root, relative, (".txt", ".mid", ".midi"))
        song = api.read_song(path)
        return {"path": relative, "title": song.name, "source": song.source, "bpm": song.bpm,
                "events": [[e.cls, e.quarters] for e in song.events], "beats": song.beats,
                "seconds": song.seconds()}

    def audio(self, relative: str) -> tuple[Path | None, Iterator[bytes] | None]:
        """(a WAV file to send as it is, or the song rendered as WAV, block by block as the
        player takes it: a header that leaves the length open, then the samples)."""
        path = inside(self.root, relative)
        if path.suffix.lower() == ".wav":
            return path, None
        from synth.sound.render import pcm16, stream_song

        # api.render's defaults: the song's own tempo, the default touch and effects
        song = api.read_song(path)
        blocks = stream_song(song.events, api.performance(song.bpm or DEFAULT_BPM),
                             Effects().check())

        def wav() -> Iterator[bytes]:
            try:
                yield open_wav_header()
                for block in blocks:
                    yield pcm16(block).tobytes()
            finally:
                blocks.close()  # a player that stops listening stops the render

        return None, wav()

    def _render(self, relative: str, events: list, performance: Performance,
                effects: Effects) -> None:
        """Render and save a song's WAV on a thread of its own; until it is saved, the player
        streams it from `rendering(relative)` as it comes."""
        rendering = self._rendering[relative] = Rendering()

        def run() -> None:
            try:
                api.write_outputs(events, api.Outputs(audio=self.root / relative), performance,
                                  effects, tap=rendering.add)
            except Exception as exc:  # reaches the player as the end of the stream
                rendering.finish(str(exc))
            else:
                rendering.finish()
            finally:
                self._rendering.pop(relative, None)

        threading.Thread(target=run, daemon=True, name="render").start()

    def rendering(self, relative: str) -> "Rendering | None":
        """The song being rendered into `relative`, if it is not saved yet."""
        return self._rendering.get(relative)

    def download(self, relative: str, kind: str
                 ) -> tuple[Path | None, bytes | Iterator[bytes] | None, str]:
        """(file, bytes or a rendered WAV's blocks; file name) of a song as `kind`: wav, mid
        or txt."""
        if kind not in ("wav", "mid", "txt"):
            raise SynthError(f"format '{kind[:20]}' is not one the studio writes: expected "
                             "wav, mid or txt")
        path = inside(self.root, relative)
        suffix = path.suffix.lower().lstrip(".")
        name = re.sub(r"[^A-Za-z0-9._ -]", "_", f"{path.stem}.{kind}")  # safe in a header
        if suffix == kind or (kind == "mid" and suffix == "midi"):
            return path, None, path.name
        if kind == "wav":
            return None, self._rendered(path), name
        if suffix == "wav":
            raise SynthError(f"{relative}: audio only, there is no song to save as .{kind}")
        song = api.read_song(path)
        if kind == "mid":
            from synth.music.midi import events_to_midi

            buffer = io.BytesIO()
            events_to_midi(song.events, song.bpm or DEFAULT_BPM).save(file=buffer)
            return None, buffer.getvalue(), name
        from synth.music.songs import format_song

        return None, format_song(song).encode("utf-8"), name

    def _rendered(self, path: Path) -> Iterator[bytes]:
        """The song rendered by `synth render` into a hidden partial file beside it (a file to
        download has its sizes in its header), then read out a block at a time and removed."""
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}.",
                                    suffix=f"{files.PART}.wav", dir=path.parent)
        os.close(fd)
        rendered = Path(name)
        try:
            api.render(path, rendered, overwrite=True)
        except BaseException:
            rendered.unlink(missing_ok=True)
            raise

        def read() -> Iterator[bytes]:
            try:
                with rendered.open("rb") as source:
                    while chunk := source.read(1 << 16):
                        yield chunk
            finally:
                rendered.unlink(missing_ok=True)

        return read()

    # --- importing and composing --------------------------------------------------------

    def import_midi(self, name: str, data: bytes) -> dict:
        """A MIDI file dropped on the page, imported into dataset/ by `synth import`'s rules."""
        from synth.music import importer

        if len(data) > MAX_UPLOAD:
            raise SynthError(f"{name[:60]}: {len(data)} bytes is too big: expected a MIDI file "
                             f"of at most {MAX_UPLOAD // 2**20} MB")
        clean = re.sub(r"[^A-Za-z0-9._ -]+", "", Path(name.replace("\\", "/")).name)[:80]
        if Path(clean).suffix.lower() not in (".mid", ".midi") or clean.startswith("."):
            raise SynthError(f"{name[:60]!r}: expected a MIDI file (.mid or .midi)")
        dataset = self.root / "dataset"
        dataset.mkdir(exist_ok=True)
        # Parsed from a hidden folder inside dataset/, removed at once: the studio writes
        # nowhere else.
        work = Path(tempfile.mkdtemp(prefix=".import-", dir=dataset))
        try:
            upload = work / clean
            upload.write_bytes(data)
            result = next(importer.import_many([upload], dataset, workers=1))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not result.ok:
            raise SynthError(result.error.replace(str(upload), clean))
        report = result.report
        return {"saved": self.rel(result.out), "skipped": result.skipped,
                "title": result.song.title,
                "events": len(result.song.events), "notes": report.kept,
                "folded": report.folded, "dropped": report.dropped, "rests": report.rests,
                "quantised": report.moved, "clamped": report.clamped, "shift": report.octaves}

    def model(self, style: str | None):
        found = styles.find(style, self.root)
        manifest = found.path / styles.MANIFEST
        key = (str(found.path.resolve()), manifest.stat().st_mtime_ns if manifest.exists() else 0)
        if key not in self._models:
            self._models[key] = api.load_model(found.path)
        return self._models[key]

    def compose(self, request: dict) -> dict:
        """Compose through synth.api's one pipeline, as `synth compose` does, and save
        out/NAME.wav, .txt and .mid."""
        ask, default = Ask(request), compose_defaults()
        notes = ask.int("notes", default["notes"], 1, MAX_NOTES)
        sampling = Sampling(temperature=ask.float("temperature", default["temperature"]),
                            top_p=ask.float("top_p", default["top_p"]),
                            seed=ask.int("seed", default["seed"], 0, MAX_SEED))
        bpm = ask.float("bpm", default["bpm"])
        primer = ask.text("primer", default["primer"])
        effects = Effects(room_size=ask.float("room_size", default["room_size"]),
                          wet=ask.float("wet", default["wet"]),
                          cutoff=ask.float("cutoff", default["cutoff"]),
                          enabled=ask.bool("effects", default["effects"])).check()
        even = ask.bool("even", default["even"])
        style = ask.text("style", default["style"])
        model = self.model(style or None)
        performance = api.performance(bpm, seed=sampling.seed)
        song = api.compose_song(api.ComposeRequest(notes, primer if primer.strip() else None,
                                                   sampling, even, model))
        out = self.root / "out"

        def planned(stem: str) -> files.Writers:
            # Each writer saves through synth.api onto the claim's temporary file; the WAV's
            # name must be free too, and is claimed by its render (never over a file).
            def save(tmp: Path, kind: str) -> None:
                api.write_outputs(song.events, api.Outputs(**{kind: tmp}), performance,
                                  title=stem, source=f"composed by synth studio ({style})",
                                  overwrite=True)

            return [(out / f"{stem}.wav", None),
                    (out / f"{stem}.txt", lambda tmp: save(tmp, "song")),
                    (out / f"{stem}.mid", lambda tmp: save(tmp, "midi"))]

        # claimed as new files: two composes at once, or a `synth compose` saving meanwhile,
        # never take one name
        stem = files.save_new("song", planned)
        self._render(f"out/{stem}.wav", song.events, performance, effects)
        return {"id": f"out/{stem}", "song": f"out/{stem}.txt", "wav": f"out/{stem}.wav",
                "midi": f"out/{stem}.mid", "primer": song.primer_length,
                "events": [[e.cls, e.quarters] for e in song.events], "bpm": performance.bpm,
                "title": stem}


def compose_defaults() -> dict:
    """The Compose page's starting values (GET /api/compose), read from the homes the CLI's
    options read too: ComposeRequest, Sampling, DEFAULT_BPM and Effects."""
    request, effects = api.ComposeRequest(), Effects()
    return {"notes": request.notes, "bpm": DEFAULT_BPM, "seed": request.sampling.seed,
            "temperature": request.sampling.temperature, "top_p": request.sampling.top_p,
            "room_size": effects.room_size, "wet": effects.wet, "cutoff": effects.cutoff,
            "effects": effects.enabled, "even": request.even, "primer": "",
            "style": styles.DEFAULT}


class Rendering:
    """A song being rendered and saved: its 16-bit samples so far, for a player that starts
    before the file is complete."""

    WAIT = 30.0  # seconds a reader waits for the next block before giving up

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done = False
        self.error = ""
        self._changed = threading.Condition()

    def add(self, block) -> None:
        from synth.sound.render import pcm16

        data = pcm16(block).tobytes()
        with self._changed:
            self.chunks.append(data)
            self._changed.notify_all()

    def finish(self, error: str = "") -> None:
        with self._changed:
            self.done, self.error = True, error
            self._changed.notify_all()

    def wav(self) -> Iterator[bytes]:
        """A WAV header that leaves the length open, then the samples as they come."""
        yield open_wav_header()
        sent = 0
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self.done or len(self.chunks) > sent, self.WAIT)
                fresh, done = self.chunks[sent:], self.done
            if not fresh and not done:
                return  # the render stalled: end the stream rather than hang
            yield from fresh
            sent += len(fresh)
            if done and sent == len(self.chunks):
                return

    def wait(self, timeout: float = 60.0) -> str:
        """Until the song is saved; its error, if any."""
        with self._changed:
            self._changed.wait_for(lambda: self.done, timeout)
            return self.error


class Ask:
    """The fields of a JSON request, each checked for its type; the values' ranges are
    checked by the library functions that use them, as for the CLI's options."""

    def __init__(self, data: object):
        if not isinstance(data, dict):
            raise SynthError("expected a JSON object")
        self.data = data

    def _get(self, key: str):
        value = self.data.get(key)
        return None if value == "" else value

    def int(self, key: str, default, low: int, high: int):
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not float(value).is_integer():
            raise SynthError(f"{key}: {str(value)[:20]!r} is not a whole number")
        if not low <= value <= high:
            raise SynthError(f"{key}: {value} is out of range: expected {low}-{high}")
        return int(value)

    def float(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            raise SynthError(f"{key}: {str(value)[:20]!r} is not a number")
        return float(value)

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or len(value) > 10_000:
            raise SynthError(f"{key}: expected text")
        return value

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise SynthError(f"{key}: expected true or false")
        return value


def open_wav_header() -> bytes:
    """The header of a stereo 16-bit WAV at 44.1 kHz whose length is not known yet (the
    largest sizes, which browsers read as "until the stream ends")."""
    from synth.sound.piano import RATE

    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 2, RATE, RATE * 4, 4, 16) +
            b"data" + struct.pack("<I", 0xFFFFFFFF - 36))


def _files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        return []
    base = folder.resolve()
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes
                  and not p.name.startswith(".") and p.is_file()
                  and p.resolve().is_relative_to(base))  # no link out of the folder
