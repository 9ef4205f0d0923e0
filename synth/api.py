"""The Python API: the functions the command line and the studio call, for notebooks and other
programs.

    import synth
    events = synth.compose(notes=200, seed=1)      # the default model, 200 new events
    synth.render(events, "song.wav")               # the piano and effects, to a WAV file
    synth.write_song("song.txt", events)           # the song file, read back by read_song

One compose pipeline: `compose_song(ComposeRequest(...))` gives the whole song (primer, then
the new events) and `write_outputs` saves it; `synth compose`, the studio's Compose page and
`synth.compose` (which returns the new events alone) all go through them, so one request gives
one song from each. `even` means every length one beat, the primer's too: the model still hears
the primer as written, so an even song has the same notes as the song without it.
The defaults have one home each (tempo: synth.music.songs.DEFAULT_BPM, effects:
synth.sound.effects.Effects, sampling: synth.learn.generate.Sampling), which these signatures,
the CLI's options and the studio's forms all read.

Every problem is a `synth.SynthError` with the command line's one-line message. Heavy modules
(pedalboard, soundfile, mido, matplotlib) are imported by the function that needs them (mido for
a MIDI file on a side thread while the audio renders), never TensorFlow. Outputs are written
atomically and an existing file is kept unless `overwrite`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

from synth.errors import SynthError
from synth.learn.generate import Sampling, check_notes, check_seed
from synth.music.events import Event, check_event, even as evenly
from synth.music.songs import DEFAULT_BPM, Song, check_bpm
from synth.sound.piano import Performance

if TYPE_CHECKING:
    import numpy as np

    from synth.sound.effects import Effects
    from synth.learn.model import Model

Events = Sequence[Event]
Melody = Union[Song, Events]  # a Song or its events


@dataclass(frozen=True)
class ComposeRequest:
    """One song to compose, asked the same way by the CLI, the studio and `synth.compose`:
    `notes` new events after the primer, drawn with `sampling` from `model` (a folder or a
    loaded model) or the `style` of that name (neither: ./model, else the packaged default).
    `even`: every length of the song one beat, the primer's too."""

    notes: int = 200
    primer: str | Path | Events | None = None  # note names or classes, a song or MIDI file
    sampling: Sampling = field(default_factory=Sampling)
    even: bool = False
    model: Model | str | Path | None = None
    style: str | None = None

    def check(self) -> ComposeRequest:
        """The numbers in range, before any work (the model and the primer are read later)."""
        check_notes(self.notes)
        self.sampling.check()
        return self


@dataclass(frozen=True)
class Composition:
    """A composed song: the primer, then the new events, evened together if asked."""

    events: list[Event]
    primer_length: int
    model: Model

    @property
    def new(self) -> list[Event]:
        """The events the model drew, without the primer."""
        return self.events[self.primer_length:]


@dataclass(frozen=True)
class Outputs:
    """The files a song is saved as; None is one not asked for."""

    audio: Path | None = None  # .wav, .flac or .ogg
    midi: Path | None = None
    song: Path | None = None  # the song file (.txt)
    plot: Path | None = None  # the piano roll (.png)

    def check(self, overwrite: bool = False) -> Outputs:
        """Refuse an audio format synth does not write and, unless `overwrite`, an output that
        exists: before any work, so that nothing is composed for nothing."""
        from synth.files import refuse_existing
        from synth.sound.render import check_audio_path

        if self.audio is not None:
            check_audio_path(self.audio)
        for path in (self.audio, self.midi, self.song, self.plot):
            if path is not None:
                refuse_existing(path, overwrite)
        return self


def load_model(path: str | Path | None = None, *, style: str | None = None) -> Model:
    """A model folder, or the style of that name (`synth.learn.styles`: "chorales", models/NAME/);
    neither means ./model if there is one, else the packaged default. Not both."""
    from synth.learn.model import load_model as load
    from synth.learn.styles import model_folder

    return load(model_folder(style, path))


def read_primer(primer: str | Path | Events) -> list[Event]:
    """Events to continue: note names or classes ('C4:1.5 D4:0.5 E4'), a song file or MIDI
    file (a Path, or a str ending in .txt, .mid or .midi), or events."""
    if isinstance(primer, Path) or (isinstance(primer, str) and (
            Path(primer).suffix.lower() in (".txt", ".mid", ".midi") or Path(primer).is_file())):
        return read_song(primer).events
    if isinstance(primer, str):
        from synth.music.events import parse_events

        return parse_events(primer)
    return [check_event(e) for e in primer]


def compose_song(request: ComposeRequest) -> Composition:
    """The song a request asks for, primer included: the one compose pipeline."""
    from synth.learn.generate import compose as generate

    request.check()
    primer = read_primer(request.primer) if request.primer is not None else []
    model = request.model
    if model is None or isinstance(model, (str, Path)):
        model = load_model(model, style=request.style)
    elif request.style is not None:
        raise SynthError(f"style={request.style!r} and a loaded model both name a model: "
                         "give one")
    song = primer + generate(model, request.notes, primer, request.sampling)
    return Composition(evenly(song) if request.even else song, len(primer), model)


def compose(notes: int = ComposeRequest.notes, *, model: Model | str | Path | None = None,
            primer: str | Path | Events | None = None, seed: int | None = Sampling.seed,
            temperature: float = Sampling.temperature, top_p: float = Sampling.top_p,
            even: bool = ComposeRequest.even, style: str | None = None,
            memory: bool | None = Sampling.memory) -> list[Event]:
    """`notes` new events from the model (or the style of that name; the default model if
    neither is given) after the primer; the primer itself is not repeated in the result.
    `even` makes every length one beat. `memory` mixes in the PPM memory (None: as the model's
    manifest says). The same song as `compose_song` (and `synth compose`) less the primer."""
    return compose_song(ComposeRequest(notes, primer, Sampling(temperature, top_p, seed, memory),
                                       even, model, style)).new


def write_outputs(events: Events, outputs: Outputs, performance: Performance = Performance(),
                  effects: Effects | None = None, *, title: str | None = None,
                  source: str | None = None, primer_length: int = 0, overwrite: bool = False,
                  tap: Callable[[np.ndarray], None] | None = None) -> list[Path]:
    """Render and save each output asked for, audio first, as `synth compose` and the studio
    save a song; returns the paths written. The piano roll shows the primer in its own colour;
    `tap` sees each block of audio as it is written (see `render`)."""
    bpm = performance.bpm
    written = []
    if outputs.audio is not None:
        # mido's import is most of a MIDI file's cost: it runs beside the audio's render, whose
        # work mostly releases the GIL, instead of after it.
        aside = _import_aside("mido") if outputs.midi is not None else None
        try:
            written.append(render(events, outputs.audio, bpm=bpm, effects=effects,
                                  humanize=performance.humanize, seed=performance.seed,
                                  overwrite=overwrite, tap=tap))
        finally:
            if aside is not None:
                aside.join()
    if outputs.midi is not None:
        written.append(write_midi(outputs.midi, events, bpm=bpm, overwrite=overwrite))
    if outputs.song is not None:
        written.append(write_song(outputs.song, events, title=title, bpm=bpm, source=source,
                                  overwrite=overwrite))
    if outputs.plot is not None:
        written.append(piano_roll(outputs.plot, events, bpm=bpm, primer_length=primer_length,
                                  title=title, overwrite=overwrite))
    return written


def _import_aside(module: str) -> threading.Thread:
    """Import `module` on a thread of its own, so that a later import finds it loaded; a
    failure is left for that import to report."""
    def load() -> None:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - the import that needs it raises it again
            pass

    thread = threading.Thread(target=load, name=f"import {module}", daemon=True)
    thread.start()
    return thread


def performance(bpm: float = DEFAULT_BPM, humanize: float = Performance.humanize,
                seed: int | None = Performance.seed) -> Performance:
    """How the piano plays, checked: tempo 20-400 bpm, humanize 0-1 (seeded wobble)."""
    if not 0.0 <= humanize <= 1.0:
        raise SynthError(f"--humanize {humanize:g} is out of range: expected 0-1")
    return Performance(bpm=check_bpm(bpm), humanize=humanize, seed=check_seed(seed))


def render(song: Melody | str | Path, out: str | Path | None = None, *,
           bpm: float | None = None, effects: Effects | None = None,
           humanize: float = Performance.humanize, seed: int | None = Performance.seed,
           overwrite: bool = False,
           tap: Callable[[np.ndarray], None] | None = None) -> np.ndarray | Path:
    """A song (events, a Song, or a song or MIDI file) through the piano and effects: with
    `out` (.wav, .flac or .ogg) written block by block and atomically, and its path returned;
    without, stereo float32 audio at 44.1 kHz, peaking at -1 dBFS at most.
    `bpm` defaults to the song's own, else DEFAULT_BPM; `effects` to `synth.Effects()`; `tap`
    sees each block as it is written to `out` (the studio streams a song while it is saved)."""
    from synth.sound.render import check_audio_path, render_song, stream_song, write_audio
    from synth.sound.effects import Effects

    song = _song(song)
    played = performance(_bpm(bpm, song), humanize, seed)
    effects = (effects or Effects()).check()
    if out is None:
        return render_song(song.events, played, effects)
    out = _free(check_audio_path(Path(out)), overwrite)
    blocks = stream_song(song.events, played, effects)
    # block by block; the name is claimed at the end, so a file that appeared meanwhile is kept
    write_audio(out, blocks if tap is None else _tapped(blocks, tap), exclusive=not overwrite)
    return out


def _tapped(blocks, tap):
    try:
        for block in blocks:
            tap(block)
            yield block
    finally:
        blocks.close()


def read_song(path: str | Path) -> Song:
    """A song file (.txt) or the melody of a MIDI file (.mid, .midi)."""
    from synth.music.midi import read_melody

    return read_melody(Path(path))


def write_song(path: str | Path, song: Melody, *, title: str | None = None,
               bpm: float | None = None, source: str | None = None,
               overwrite: bool = False) -> Path:
    """Save a song file; title, bpm and source replace the Song's own where given."""
    from synth.music.songs import write_song as write

    song = _song(song)
    saved = Song(events=list(song.events), title=song.title if title is None else title,
                 source=song.source if source is None else source,
                 bpm=song.bpm if bpm is None else check_bpm(bpm), comments=list(song.comments))
    write(_free(Path(path), overwrite), saved)
    return Path(path)


def write_midi(path: str | Path, song: Melody, *, bpm: float | None = None,
               overwrite: bool = False) -> Path:
    """Save a type-0 MIDI file of the song at `bpm` (default the song's own, else DEFAULT_BPM)."""
    from synth.music.midi import events_to_midi, write_midi as write

    song = _song(song)
    write(_free(Path(path), overwrite), events_to_midi(song.events, _bpm(bpm, song)))
    return Path(path)


def piano_roll(path: str | Path, song: Melody, *, bpm: float | None = None,
               primer_length: int = 0, title: str | None = None, overwrite: bool = False) -> Path:
    """Save a piano roll picture (.png); the first `primer_length` events in another colour."""
    from synth.music.plot import piano_roll as plot

    song = _song(song)
    plot(_free(Path(path), overwrite), song.events, _bpm(bpm, song),
         primer_length, song.name if title is None else title)
    return Path(path)


def _song(song: Melody | str | Path) -> Song:
    if isinstance(song, (str, Path)):
        return read_song(song)
    if isinstance(song, Song):
        return song
    return Song(events=[check_event(e) for e in song])


def _bpm(bpm: float | None, song: Song) -> float:
    """The tempo asked for (checked: 0 is an error, not the default), else the song's own."""
    return (song.bpm or DEFAULT_BPM) if bpm is None else check_bpm(bpm)


def _free(path: Path, overwrite: bool) -> Path:
    from synth.files import refuse_existing

    refuse_existing(path, overwrite)
    return path

