"""The `synth` command line: typer commands that parse, call synth.api and the wings, and print. Imports anything below it (synth.studio to start the studio); nothing imports it."""

from synth.cli.commands import app, main

__all__ = ["app", "main"]
