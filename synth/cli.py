"""The `synth` command line: parse, call the library, print. Nothing else lives here.

Heavy modules (TensorFlow above all) are imported inside the commands that need them, so
`synth compose` and `synth live` never pay for them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from synth.errors import SynthError

app = typer.Typer(
    name="synth",
    help="Record melodies, train a small LSTM on them, compose new ones and play along live.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)
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
    """Turn MIDI files into song files: one melody line each, moved into C3-B4."""
    from synth import files, midi, songs

    table = Table("file", "notes", "folded", "dropped", "rests", "shift", "saved as")
    failures: list[str] = []
    midi_paths = midi.find_midi_files(paths)
    if not midi_paths:
        raise SynthError(f"no MIDI files (*.mid, *.midi) found in {', '.join(map(str, paths))}")
    for path in midi_paths:
        try:
            song, report = midi.import_midi(path)
            out = files.unique_path(dataset, files.slug(song.title or path.stem), ".txt")
            songs.write_song(out, song)
        except SynthError as exc:
            failures.append(str(exc))
            table.add_row(str(path), "-", "-", "-", "-", "-", "[red]failed[/red]")
            continue
        table.add_row(str(path), str(report.kept), str(report.folded), str(report.dropped),
                      str(report.rests), f"{report.octaves:+d} oct", str(out))
    console.print(table)
    if failures:
        raise SynthError("\n".join(failures))


@app.command()
def devices() -> None:
    """List MIDI inputs, MIDI outputs and audio outputs."""
    from synth.devices import list_devices

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
    try:
        app()
    except SynthError as exc:
        if _state["debug"]:
            raise
        for line in str(exc).splitlines() or ["unknown error"]:
            errors.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
