"""The command line's start and end: the typer app cut down to the one command a run invokes,
and an interpreter shutdown that skips its last garbage collections."""

from __future__ import annotations

import atexit
import copy
import gc
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


def quick_exit() -> None:
    """Have the interpreter freeze every object as it shuts down, so that its last garbage
    collections pass them by: those walk every object left (the model's, the piano's, the
    modules'), about 50 ms of CPU after a compose that has written everything (measured under
    load). Objects are still freed as their modules are cleared; only objects in reference
    cycles are left to the operating system, and Python never promised to finalise objects
    alive at exit. At exit, not now: a program that calls main() itself (the tests) collects
    as before until it ends. Registered once however often main() runs."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
