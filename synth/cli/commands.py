"""The `synth` command line: parse, call the library, print. Nothing else lives here: the
screens are in synth/cli/screens.py, and every option's default is read from its one home
(tempo: songs.DEFAULT_BPM, effects: Effects, sampling: Sampling, composing: ComposeRequest).

Heavy modules (TensorFlow above all) are imported inside the commands that need them, so
`synth compose` and `synth live` never pay for them; so is rich's Table, which only the
reports use. The homes of the defaults are the modules compose loads anyway.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from synth import api, files
from synth.cli.screens import (LineReporter, LiveScreen, NoteShower, RichReporter, console,
                               errors, metrics_table, show_input)
from synth.errors import SynthError
from synth.learn.generate import Sampling
from synth.music.songs import DEFAULT_BPM
from synth.sound.effects import Effects
from synth.sound.piano import Performance

app = typer.Typer(
    name="synth",
    help="Record melodies, train a small LSTM on them, compose new ones and play along live.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state = {"debug": False}


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="MIDI files or folders of them.")],
    dataset: Annotated[Path, typer.Option(help="Folder to save the songs in.")] = Path("dataset"),
) -> None:
    """Turn MIDI files into song files: one melody line each, moved into C3-B4.

    Files are parsed on every core; up to 50 files get a row each, more get one summary.
    """
    import time

    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    from rich.table import Table

    from synth.music import importer, midi

    midi_paths = midi.find_midi_files(paths)
    if not midi_paths:
        raise SynthError(f"no MIDI files (*.mid, *.midi) found in {', '.join(map(str, paths))}")
    results: list = []
    # Refreshed by hand, not by rich's timer thread: no thread runs while workers are forked.
    with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True, auto_refresh=False,
                  disable=not console.is_terminal) as progress:
        task = progress.add_task("import", total=len(midi_paths))
        shown = 0.0
        for result in importer.import_many(midi_paths, dataset):
            results.append(result)
            progress.advance(task)
            if time.monotonic() - shown > 0.1:  # ten redraws a second, as rich's own timer
                progress.refresh()
                shown = time.monotonic()
    ok = [r.report for r in results if r.ok]
    if len(results) <= 50:
        table = Table("file", "notes", "folded", "dropped", "rests", "quantised", "clamped",
                      "shift", "saved as")
        for r in results:
            if not r.ok:
                table.add_row(str(r.path), "-", "-", "-", "-", "-", "-", "-", "[red]failed[/red]")
                continue
            report = r.report
            saved_as = f"{r.out} (already there)" if r.skipped else str(r.out)
            table.add_row(str(r.path), str(report.kept), str(report.folded),
                          str(report.dropped), str(report.rests), str(report.moved),
                          str(report.clamped), f"{report.octaves:+d} oct", saved_as)
    else:
        # One column of totals: fits a narrow terminal however many files there were.
        table = Table("import", "total")
        skipped = sum(r.skipped for r in results)
        totals = {"files": len(results), "imported": len(ok) - skipped,
                  "failed": len(results) - len(ok), "already there": skipped,
                  "notes": sum(r.kept for r in ok), "folded": sum(r.folded for r in ok),
                  "dropped": sum(r.dropped for r in ok), "rests": sum(r.rests for r in ok),
                  "quantised": sum(r.moved for r in ok), "clamped": sum(r.clamped for r in ok),
                  "saved in": dataset}
        for name, value in totals.items():
            table.add_row(name, str(value))
    console.print(table)
    skipped = sum(r.skipped for r in results)
    if skipped:
        console.print(f"{skipped} of the songs were in {dataset} already (same source, same "
                      "notes): skipped, not written twice.")
    failures = [r.error for r in results if not r.ok]
    if failures:
        raise SynthError("\n".join(failures))


# Options shared by compose and render, defined once.
def _check_bpm(bpm: Optional[float]) -> Optional[float]:
    from synth.music.songs import check_bpm

    # checked here: `bpm or DEFAULT_BPM` would take 0
    return bpm if bpm is None else check_bpm(bpm)


Bpm = Annotated[Optional[float], typer.Option(help="Tempo in beats per minute \\[default: the "
                                              f"song's own, else {DEFAULT_BPM:g}].",
                                              callback=_check_bpm)]
ComposeBpm = Annotated[Optional[float], typer.Option("--bpm", help="Tempo in beats per minute "
                                                     f"\\[default: {DEFAULT_BPM:g}].",
                                                     callback=_check_bpm)]
RoomSize = Annotated[float, typer.Option(help="Reverb room size, 0-1.")]
Wet = Annotated[float, typer.Option(help="Reverb wet level, 0-1.")]
Cutoff = Annotated[float, typer.Option(help="Low-pass cutoff in Hz (24 dB per octave).")]
NoFx = Annotated[bool, typer.Option("--no-fx", help="Dry piano: no reverb or low-pass (same "
                                    "loudness).")]
Loudness = Annotated[float, typer.Option(help="Integrated loudness in LUFS, -40 to -6 (true "
                                         "peaks stay at or below -1 dBTP).")]
Humanize = Annotated[float, typer.Option(help="Sloppy pianist: timing and velocity wobble, 0-1.")]
MidiOut = Annotated[Optional[Path], typer.Option("--midi", help="Also save a MIDI file.")]
PlotOut = Annotated[Optional[Path], typer.Option("--plot", help="Also save a piano roll (.png).")]
Overwrite = Annotated[bool, typer.Option(help="Replace output files that exist.")]
MemoryOpt = Annotated[Optional[bool], typer.Option(
    "--memory/--no-memory", help="Mix the PPM memory of the song so far (and of the training "
    "songs) into the model's choices \\[default: as the model's manifest says]",
    show_default=False)]


ModelDir = Annotated[Optional[Path], typer.Option("--model", help="Model folder \\[default: "
                                                  "./model, else the packaged one].")]
StyleOpt = Annotated[Optional[str], typer.Option("--style", help="A style: the model in "
                                                 "models/NAME/ or shipped with synth (see "
                                                 "`synth styles`); not with --model.")]


def _effects(room_size: float, wet: float, cutoff: float, no_fx: bool, loudness: float) -> Effects:
    return Effects(room_size=room_size, wet=wet, cutoff=cutoff, enabled=not no_fx,
                   loudness=loudness).check()


@app.command()
def compose(
    notes: Annotated[int, typer.Option(help="How many new events (notes and rests) to "
                                       "generate.")] = api.ComposeRequest.notes,
    out: Annotated[Optional[Path], typer.Option(help="Audio file to write (.wav, .flac, .ogg) "
                                                "\\[default: out/song.wav, numbered]")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Same seed, same song.")] = Sampling.seed,
    temperature: Annotated[float, typer.Option(help="Below 1 safer, above 1 wilder.")] = \
        Sampling.temperature,
    top_p: Annotated[float, typer.Option(help="Draw only from the most likely notes and "
                                         "lengths holding this much probability.")] = \
        Sampling.top_p,
    primer: Annotated[Optional[str], typer.Option(help="Notes to continue: 'C4:1.5 D4:0.5 E4', "
                                                  "classes, a song file or a MIDI file.")] = None,
    even: Annotated[bool, typer.Option("--even", help="Every length one beat (no "
                                       "rhythm).")] = api.ComposeRequest.even,
    bpm: ComposeBpm = None,
    midi: MidiOut = None,
    tokens: Annotated[Optional[Path], typer.Option("--tokens", help="Also save the song file "
                                                   "(.txt).")] = None,
    plot: PlotOut = None,
    model: ModelDir = None,
    style: StyleOpt = None,
    memory: MemoryOpt = Sampling.memory,
    room_size: RoomSize = Effects.room_size, wet: Wet = Effects.wet,
    cutoff: Cutoff = Effects.cutoff, no_fx: NoFx = not Effects.enabled,
    loudness: Loudness = Effects.loudness,
    humanize: Humanize = Performance.humanize,
    overwrite: Overwrite = False,
) -> None:
    """Compose a new melody with the model and render it with the piano."""
    from synth.music.events import total_beats

    request = api.ComposeRequest(notes, primer or None, Sampling(
        temperature=temperature, top_p=top_p, seed=seed, memory=memory), even, model,
        style).check()  # before any work
    out = out or files.unique_path(Path("out"), "song", ".wav")
    performance = api.performance(bpm or DEFAULT_BPM, humanize, seed)
    effects = _effects(room_size, wet, cutoff, no_fx, loudness)
    outputs = api.Outputs(audio=out, midi=midi, song=tokens, plot=plot).check(overwrite)
    song = api.compose_song(request)
    if not song.model.has_lengths and not even:
        console.print(f"This model ({song.model.path}) predicts notes only, not lengths (format "
                      "1): every note lasts one beat. Retrain it with `synth train` for rhythm.")
    written = api.write_outputs(song.events, outputs, performance, effects,
                                title="composed by synth", source="composed by synth",
                                primer_length=song.primer_length, overwrite=True)
    seconds = total_beats(song.events) * 60.0 / performance.bpm
    primed = f" after a {song.primer_length}-event primer" if song.primer_length else ""
    console.print(f"{notes} events{primed}, {seconds:.1f} s at {performance.bpm:g} bpm -> "
                  f"{', '.join(map(str, written))}")


@app.command()
def render(
    song_file: Annotated[Path, typer.Argument(metavar="FILE", help="A song file (.txt) or a "
                                              "MIDI file.")],
    out: Annotated[Optional[Path], typer.Option(help="Audio file to write \\[default: "
                                                "out/NAME.wav, numbered]")] = None,
    bpm: Bpm = None,
    midi: MidiOut = None,
    plot: PlotOut = None,
    room_size: RoomSize = Effects.room_size, wet: Wet = Effects.wet,
    cutoff: Cutoff = Effects.cutoff, no_fx: NoFx = not Effects.enabled,
    loudness: Loudness = Effects.loudness,
    humanize: Humanize = Performance.humanize,
    seed: Annotated[Optional[int], typer.Option(help="Seed for --humanize.")] = \
        Performance.seed,
    overwrite: Overwrite = False,
) -> None:
    """Render a song file or a MIDI file through the same piano and effects as compose."""

    song = api.read_song(song_file)
    out = out or files.unique_path(Path("out"), song_file.stem, ".wav")
    performance = api.performance(bpm or song.bpm or DEFAULT_BPM, humanize, seed)
    effects = _effects(room_size, wet, cutoff, no_fx, loudness)
    outputs = api.Outputs(audio=out, midi=midi, plot=plot).check(overwrite)
    written = api.write_outputs(song.events, outputs, performance, effects, title=song.name,
                                overwrite=True)
    seconds = song.seconds(performance.bpm)
    if song_file.suffix.lower() in (".mid", ".midi"):
        from synth.music.midi import parts

        names = parts(song_file)
        if len(names) > 1:  # a `live --midi` duet, for one
            console.print(f"{song_file}: {len(names)} parts ({', '.join(names)}) played as one "
                          "line, the highest note where they overlap, in the file's beats")
    console.print(f"{len(song.events)} events, {seconds:.1f} s at {performance.bpm:g} bpm -> "
                  f"{', '.join(map(str, written))}")


@app.command()
def train(
    dataset: Annotated[Path, typer.Option(help="Folder of song files.")] = Path("dataset"),
    model: Annotated[Optional[Path], typer.Option(help="Where to write the model \\[default: "
                                                  "model/]; not with --style.")] = None,
    style: Annotated[Optional[str], typer.Option(help="Train a style: write models/NAME/, "
                                                 "for `synth compose --style NAME`.")] = None,
    source: Annotated[Optional[list[str]], typer.Option(
        help="Only the songs whose '# source:' line contains this text (any case); give it "
        "again for more sources.")] = None,
    epochs: Annotated[int, typer.Option(help="Most epochs (early stopping may end sooner).")] = 40,
    batch_size: Annotated[int, typer.Option(help="Chunks per batch.")] = 64,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate.")] = 3e-3,
    lr_half_life: Annotated[Optional[float], typer.Option(
        help="Epochs over which the learning rate halves (smoothly); 0: constant.")] = 0.0,
    chunk: Annotated[int, typer.Option(help="Events per training sequence.")] = 64,
    val_fraction: Annotated[float, typer.Option(help="Share of songs held out.")] = 0.15,
    seed: Annotated[int, typer.Option(help="Same seed, same model.")] = 0,
    strategy: Annotated[str, typer.Option(help="default, mirrored (several GPUs) or "
                                          "multiworker (TF_CONFIG cluster).")] = "default",
    cpu_devices: Annotated[int, typer.Option(help="Split the CPU into this many logical devices "
                                             "(to try --strategy mirrored without GPUs).")] = 1,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop at the best epoch so far "
                                                         "once this many minutes are up.")] = None,
    restart: Annotated[bool, typer.Option(help="Start afresh instead of resuming from the "
                                          "checkpoint a killed run left.")] = False,
    memory: Annotated[bool, typer.Option(
        "--memory/--no-memory", help="Compose with the PPM memory by default (its tables and "
        "gate are saved either way; compose --no-memory turns it off).")] = True,
) -> None:
    """Train the melody model on the songs in the dataset folder."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from synth.learn import styles
    from synth.learn.train import TrainSettings, train as fit
    from synth.music.songs import by_source, load_dataset

    if style is not None and model is not None:
        raise SynthError(f"--style {style} and --model {model} both name where to write the "
                         "model: give one")
    model = styles.folder(style) if style is not None else (model or Path(styles.DEFAULT_FOLDER))
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                             lr_half_life=lr_half_life or None, chunk=chunk,
                             val_fraction=val_fraction, seed=seed, strategy=strategy,
                             cpu_devices=cpu_devices, max_minutes=max_minutes,
                             memory=memory).check()
    songs = load_dataset(dataset)
    if source:
        every = len(songs)
        songs = by_source(songs, source)
        console.print(f"{len(songs)} of the {every} songs in {dataset} come from "
                      f"{escape(' or '.join(repr(s) for s in source))}.")
    if len(songs) < 5:
        console.print(f"Only {len(songs)} songs: too few to hold any out, so training uses all "
                      "of them and the scores below are on training songs.")
    if console.is_terminal:
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      TextColumn("{task.fields[stats]}"), console=console) as progress:
            result = fit(songs, model, settings, RichReporter(progress), restart=restart,
                         quiet=not _state["debug"])
    else:
        result = fit(songs, model, settings, LineReporter(), restart=restart,
                     quiet=not _state["debug"])
    m = result.held_out
    console.print(metrics_table(
        f"{result.evaluated_on}: {m.events} events, best epoch {result.best_epoch} of "
        f"{result.epochs_run}, stopped by {result.stopped_by} (bits per event; length given "
        "the class)", result.with_memory, result.baselines, name="LSTM + memory",
        others=(("LSTM alone", m),)))
    console.print(f"model written to {model}/" if result.written else
                  "model not written here: the chief of the cluster writes it")


@app.command()
def evaluate(
    dataset: Annotated[Path, typer.Option(help="Folder of songs to score.")] = Path("dataset"),
    training: Annotated[Path, typer.Option(help="The training songs, for the n-gram baseline "
                                           "and the copying check.")] = Path("dataset"),
    model: ModelDir = None,
    style: StyleOpt = None,
    songs_to_compose: Annotated[int, typer.Option("--compose", help="Songs composed for the "
                                                  "copying check.")] = 20,
    memory: MemoryOpt = Sampling.memory,
) -> None:
    """Score the model on a folder of songs beside an n-gram baseline and a PPM baseline, and
    check copying."""
    from synth.learn.evaluation import COMPOSED_EVENTS, evaluate as run
    from synth.learn.styles import model_folder

    report = run(dataset, training, model_folder(style, model), songs_to_compose, memory)
    m = report.model
    others = ((("LSTM alone", report.without_memory),) if report.without_memory else ()) + \
        (("PPM, IDyOM-style", report.ppm), ("PPM, linked lengths (the memory alone)",
                                             report.linked_ppm))
    console.print(metrics_table(
        f"{dataset}: {len(report.songs)} songs, {m.events} events (bits per event; length "
        "given the class)", m, report.baselines, classes_only=report.classes_only,
        name="LSTM + memory" if report.without_memory else "LSTM", others=others))
    if report.classes_only:
        console.print("This model predicts notes only (format 1): it has no length scores.")
    if report.overlap:
        console.print(f"note: {report.overlap} of these songs are also training songs")
    console.print(f"copying: {report.copied:.1%} of 8-event runs in {songs_to_compose} composed "
                  f"songs stand verbatim in the training songs (the songs scored that are not "
                  f"training songs: {report.copied_by_songs:.1%})")
    console.print(f"repeating: {report.repeated:.1%} of 8-event runs in the composed songs repeat "
                  f"an earlier run of the same song (the first {COMPOSED_EVENTS} events of the "
                  f"songs scored: {report.repeated_by_songs:.1%})")


def _bits(metrics: dict, key: str) -> str:
    value = metrics.get(key)
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def _shown_folder(style) -> Path:
    """A packaged folder as synth/..., short enough for a table; others as they are."""
    from synth.learn.styles import PACKAGE

    inside = style.packaged and style.path.is_relative_to(PACKAGE)
    return Path(PACKAGE.name, style.path.relative_to(PACKAGE)) if inside else style.path


@app.command("styles")
def styles_() -> None:
    """List the installed styles: the default model, models/NAME/ and those shipped with synth."""
    from rich.table import Table

    from synth.learn import styles

    table = Table("style", "where", "folder", "songs", "held out", "class", "length", "joint",
                  title="Installed styles: bits per event on the held-out songs (length given "
                  "the class)")
    table.columns[2].overflow = "fold"  # a long folder wraps rather than losing its end
    for style in styles.installed():
        manifest = style.manifest()
        training = manifest.get("training") or {}
        metrics = manifest.get("metrics") or {}
        held = training.get("held_out_songs")
        held = str(len(held)) if isinstance(held, list) else "-"
        if metrics and metrics.get("evaluated_on") != "held-out songs":
            held = "none: scored on training songs"
        table.add_row(f"[bold]{escape(style.name)}[/bold]", style.where,
                      escape(str(_shown_folder(style))), str(training.get("songs", "-")), held,
                      _bits(metrics, "class_bits"), _bits(metrics, "length_bits"),
                      _bits(metrics, "joint_bits"))
    console.print(table)
    console.print("Compose in a style with `synth compose --style NAME`; train one with "
                  "`synth train --style NAME` (written to models/NAME/).")


# Options shared by record and live.
InputOpt = Annotated[Optional[str], typer.Option(
    "--input", help="A MIDI input port (name or part of it; default the first found), 'keys' "
    "for the computer keyboard, or 'replay:FILE.mid' to play a MIDI file in.")]
Speed = Annotated[float, typer.Option(help="Replay speed for --input replay:FILE.mid.")]


@app.command()
def record(
    name: Annotated[str, typer.Option(help="Song name: saved as dataset/NAME.txt (numbered if "
                                      "taken).")] = "take",
    bpm: Annotated[float, typer.Option(help="Tempo you play at: a beat lasts 60/bpm seconds; "
                                       "lengths are kept to the quarter beat.")] = DEFAULT_BPM,
    count_in: Annotated[int, typer.Option(help="Beats counted before the take starts.")] = 4,
    seconds: Annotated[Optional[float], typer.Option(help="End the take after this many "
                                                     "seconds.")] = None,
    input: InputOpt = None,
    speed: Speed = 1.0,
    dataset: Annotated[Path, typer.Option(help="Dataset folder to save into.")] = Path("dataset"),
) -> None:
    """Record one song from a keyboard into the dataset; Enter or Ctrl-C ends the take."""
    from synth.play.inputs import open_input
    from synth.music.events import events_to_names
    from synth.music.notes import midi_name
    from synth.play.journal import TakeJournal
    from synth.play.record import TAKES, check_count_in, check_seconds, record_take, save_take
    from synth.music.songs import check_bpm
    from synth.play.take import merged_names, merged_warning

    check_bpm(bpm)
    check_count_in(count_in)
    check_seconds(seconds)
    _recover_takes(dataset)
    source = open_input(input, speed, hold=60.0 / bpm)
    log = TakeJournal(dataset / TAKES, name, bpm, source.description)
    show_input(source)
    limit = f", or after {seconds:g} s" if seconds else ""
    console.print(f"Enter or Ctrl-C ends the take{limit}.")
    if count_in:
        console.print("count-in:", end=" ")
    shower = NoteShower()
    with files.sigterm_as_ctrl_c():
        try:
            take = record_take(source, bpm, seconds, count_in=count_in,
                               on_beat=lambda beat: console.print(str(beat), end=" "),
                               on_message=shower.message,
                               on_start=lambda: console.print("play!"),
                               on_progress=shower.progress, log=log)
        except BaseException:
            log.close()  # kept: `synth recover` saves what was played
            raise
    saved = save_take(take, dataset, name, source.description, log=log)
    shower.finish(saved.events if saved else [])
    if saved is None:
        console.print(f"No notes were played ({take.ended_by}); nothing saved.")
        return
    if saved.outside:
        names = " ".join(midi_name(n.pitch) for n in saved.outside)
        errors.print(f"[yellow]warning:[/yellow] {len(saved.outside)} note(s) outside C3-B4 "
                     f"left out of the song (the raw take keeps them): {names}", soft_wrap=True)
    merged = merged_names(take.merged())
    if merged:
        errors.print(f"[yellow]warning:[/yellow] "
                     f"{merged_warning(merged, bpm, 'record at a slower --bpm to keep them')} "
                     "(the raw take keeps them)", soft_wrap=True)
    rests = sum(e.is_rest for e in saved.events)
    console.print(f"Take ended by {take.ended_by}: {len(saved.events) - rests} notes, {rests} "
                  f"rests, {max(take.seconds - take.downbeat, 0.0):.1f} s"
                  + (" after the count-in." if count_in else "."))
    pickup = take.pickup()
    if pickup:
        console.print(f"The song starts {pickup:g} beat{'s' if pickup != 1 else ''} before beat "
                      "1: a pickup played during the count-in, kept as the song's first events.")
    if saved.events:
        console.print(events_to_names(saved.events))
        console.print(f"saved {saved.song_path} and {saved.take_path}")
    else:
        console.print(f"saved the raw take {saved.take_path}; no song file, as no note was "
                      "inside C3-B4")


def _recover_takes(dataset: Path) -> int:
    """Save the takes whose recording died; one line each."""
    from synth.play.record import recover_takes

    found = recover_takes(dataset)
    for left in found:
        saved = left.saved
        notes = sum(not e.is_rest for e in saved.events)
        what = f"{saved.song_path} and {saved.take_path}" if saved.song_path else \
            f"the raw take {saved.take_path}"
        console.print(f"Recovered an unfinished take from {left.day.isoformat()} ({notes} "
                      f"notes, {left.seconds:.1f} s): saved {what}")
    return len(found)


def _recover_sessions(folders: list[Path]) -> int:
    """Move what older `live` sessions left hidden into place; one line each."""
    from synth.play.outputs import recover_sessions

    found = recover_sessions(folders)
    for left in found:
        console.print(f"Recovered {left.what} of an unfinished live session: saved "
                      f"{left.path} (was {left.leftover.name})")
    return len(found)


@app.command()
def recover(
    folders: Annotated[Optional[list[Path]], typer.Argument(metavar="FOLDER...",
        help="Folders to look in for what `live` sessions left \\[default: out].")] = None,
    dataset: Annotated[Path, typer.Option(help="Dataset folder whose unfinished takes to "
                                          "save.")] = Path("dataset"),
) -> None:
    """Save what a killed `record` or `live` left: unfinished takes become songs, as they
    would have been saved; hidden session files of older sessions get their names."""
    found = _recover_takes(dataset) + _recover_sessions(folders or [Path("out")])
    if not found:
        where = ", ".join(map(str, [dataset / "takes", *(folders or [Path("out")])]))
        console.print(f"Nothing to recover in {where}.")


@app.command()
def live(
    input: InputOpt = None,
    speed: Speed = 1.0,
    output: Annotated[Optional[str], typer.Option(
        help="audio (the sound card; default where there is one), audio:DEVICE, midi:PORT, "
        "or wav:FILE (the whole session, you and the answers) \\[default: audio, else "
        "out/live.wav]")] = None,
    gap: Annotated[Optional[float], typer.Option(
        help="Seconds with no key held that end a phrase; wins over --gap-beats "
        "\\[default: --gap-beats once your tempo is known, 0.8 s before].")] = None,
    gap_beats: Annotated[float, typer.Option(
        help="Beats with no key held that end a phrase, once your tempo is known; never "
        "less than 1.3 times the longest rest you left inside a phrase.")] = 1.5,
    respond: Annotated[Optional[int], typer.Option(help="Events (notes and rests) per answer, "
                                                   "1-500 \\[default: as many as the phrase "
                                                   "had, in at most 16 beats].")] = None,
    interrupt: Annotated[bool, typer.Option(help="Keys played during an answer cut it "
                                            "short.")] = True,
    overlap: Annotated[bool, typer.Option(
        "--overlap", help="Keys played during an answer begin your next phrase, and the answer "
        "finishes its bar (instead of --interrupt).")] = False,
    bpm: Annotated[Optional[float], typer.Option(
        help="Fix the tempo of the answers (and of the grid your phrases are read on) "
        "\\[default: follow yours, heard anew in each phrase].")] = None,
    temperature: Annotated[float, typer.Option(help="Below 1 safer, above 1 wilder.")] = \
        Sampling.temperature,
    top_p: Annotated[float, typer.Option(help="Draw only from the most likely notes holding "
                                         "this much probability.")] = Sampling.top_p,
    seed: Annotated[Optional[int], typer.Option(help="Same seed, same answers to the same "
                                                "playing.")] = Sampling.seed,
    log: Annotated[Optional[Path], typer.Option(help="Write one JSON line per answer "
                                                "(phrase, answer, their lengths, bpm, gap, "
                                                "delay, early, latency_ms).")] = None,
    midi: Annotated[Optional[Path], typer.Option(
        help="Write the session as a two-track MIDI file (you, the model; your tempo), "
        "rewritten after each answer.")] = None,
    model: ModelDir = None,
    style: StyleOpt = None,
    memory: MemoryOpt = Sampling.memory,
    room_size: RoomSize = Effects.room_size, wet: Wet = Effects.wet,
    cutoff: Cutoff = Effects.cutoff, no_fx: NoFx = not Effects.enabled,
    loudness: Loudness = Effects.loudness,
    overwrite: Overwrite = False,
) -> None:
    """Call and response: play a phrase, pause, and the model answers; Ctrl-C ends."""
    import time

    from synth.files import refuse_existing
    from synth.play.inputs import open_input
    from synth.play.exchanges import AnswerLog
    from synth.play.live import LiveSettings, Session
    from synth.play.outputs import default_output, open_output, session_folders, session_wav
    from synth.learn.model import load_model
    from synth.learn.styles import model_folder

    from synth.play.session_midi import SessionMidi

    settings = LiveSettings(gap=gap, gap_beats=gap_beats, respond=respond, interrupt=interrupt,
                            overlap=overlap, bpm=bpm,
                            sampling=Sampling(temperature, top_p, seed, memory)).check()
    effects = _effects(room_size, wet, cutoff, no_fx, loudness)
    if log is not None and log.suffix.lower() != ".jsonl":
        raise SynthError(f"--log {log}: expected a .jsonl file")
    # What older sessions left hidden takes its name first: the new one picks after it.
    _recover_sessions(session_folders(output, log))
    if log is not None:
        refuse_existing(log, overwrite)
    if midi is not None:
        if midi.suffix.lower() not in (".mid", ".midi"):
            raise SynthError(f"--midi {midi}: expected a .mid file")
        refuse_existing(midi, overwrite)
    if output is None:
        output = default_output()
        if output != "audio":
            console.print(f"No sound card found: the session is saved to "
                          f"{session_wav(output)}.")
    melody_model = load_model(model_folder(style, model))
    source = open_input(input, speed, hold=60.0 / (bpm or DEFAULT_BPM))
    answers = AnswerLog(log) if log else None
    try:
        sound = open_output(output, effects, time.monotonic(), overwrite)
    except SynthError:
        if answers is not None:
            answers.abandon()
        raise
    show_input(source)
    duet = SessionMidi(midi, bpm or DEFAULT_BPM) if midi is not None else None
    session = Session(melody_model, sound, settings, answers, LiveScreen(), duet=duet)
    pause = f"{gap:g} s" if gap is not None else f"{gap_beats:g} beats"
    console.print(f"Play a phrase and pause for {pause}; the model answers. Ctrl-C ends.")
    with files.sigterm_as_ctrl_c():
        try:
            session.run(source)
        finally:
            written = session.close()
    console.print()
    console.print(f"Session ended by {session.ended_by}: {len(session.exchanges)} answers"
                  + (f"; saved {', '.join(map(str, written))}" if written else ""))
    merged = [name for exchange in session.exchanges for name in exchange.merged]
    if merged:
        errors.print(f"[yellow]warning:[/yellow] {len(merged)} note(s) of your phrases were "
                     f"faster than a quarter beat and merged: {' '.join(merged)}; play them "
                     "slower to keep them", soft_wrap=True)


@app.command()
def studio(
    port: Annotated[int, typer.Option(help="Port to listen on; the next free one if it is "
                                      "taken.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but 127.0.0.1 "
                                      "exposes the studio to other machines.")] = "127.0.0.1",
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open the "
                                             "browser.")] = False,
    no_token: Annotated[bool, typer.Option("--no-token", help="No token in the address "
                                           "(127.0.0.1 only): any program on this machine "
                                           "may use the studio.")] = False,
    allow_host: Annotated[Optional[list[str]], typer.Option("--allow-host", help="Another name the "
                                                  "studio is reached by (with --host), "
                                                  "besides 127.0.0.1, localhost and the "
                                                  "address.")] = None,
) -> None:
    """The web app: library, compose, duet, record and train in the browser."""
    from synth.studio.server import serve

    serve(Path("."), host, port, not no_browser, say=lambda text: console.print(
        escape(text), soft_wrap=True), use_token=not no_token, allow_hosts=allow_host or ())


@app.command()
def devices() -> None:
    """List MIDI inputs, MIDI outputs and audio outputs."""
    from synth.play.devices import list_devices

    found = list_devices()
    groups = {"MIDI inputs": found.midi_inputs, "MIDI outputs": found.midi_outputs,
              "Audio outputs": found.audio_outputs}
    if not any(groups.values()):
        console.print("No MIDI inputs, MIDI outputs or audio outputs were found on this machine; "
                      "use --input keys or --input replay:FILE.mid to play, and WAV files to "
                      "listen.")
        return
    for title, names in groups.items():
        console.print(f"[bold]{title}[/bold]")
        for name in names or ["(none found)"]:
            console.print(f"  {name}")


def main() -> None:
    """Entry point: run the app; a SynthError becomes one line per problem and exit status 2."""
    from synth.cli.startup import invoked, quick_exit

    quick_exit()
    try:
        invoked(app, sys.argv[1:])()  # typer builds only the command this run calls
    except SynthError as exc:
        if _state["debug"]:
            raise
        for line in str(exc).splitlines() or ["unknown error"]:
            errors.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(130)

