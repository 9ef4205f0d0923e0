"""The `synth` command line: typer commands that parse, call synth.api and the wings, and print (commands.py), and what they draw on the terminal (screens.py). Imports anything below it (synth.studio to start the studio); nothing imports it."""

from synth.cli.commands import app, main

__all__ = ["app", "main"]
