"""The command line's start: the typer app cut down to the one command a run invokes."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import typer
from typer.main import get_command_name

GROUP_FLAGS = ("--debug",)  # the app's own options that may stand before the command name


def invoked(app: typer.Typer, args: Sequence[str]) -> typer.Typer:
    """`app` with only the command `args` name registered, or `app` itself when they name none
    (no arguments, `--help`, an unknown command or anything else before the name).

    typer builds the click command of every registered command, reading each signature, before
    it parses anything: about 30 ms, most of it for commands the run never calls. A run that
    names its command needs only that one; every other run gets the whole app, so `synth`,
    `synth --help` and a mistyped command print just what they always did."""
    for arg in args:
        if arg in GROUP_FLAGS:
            continue
        chosen = [info for info in app.registered_commands
                  if (info.name or get_command_name(info.callback.__name__)) == arg]
        if len(chosen) != 1:
            return app
        light = copy.copy(app)  # same settings and callback; the app itself is left alone
        light.registered_commands = chosen
        return light
    return app
