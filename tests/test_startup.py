"""The command line's start and end (synth/cli/startup.py): a run that names its command builds
that command alone, every other run the whole app, with the same help and errors as before;
the objects are frozen at exit, not before."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from synth.cli import app
from synth.cli.startup import invoked


def names(chosen: typer.Typer) -> list[str]:
    return sorted(typer.main.get_command(chosen).commands)


@pytest.mark.parametrize("args,command", [(["compose", "--notes", "9"], "compose"),
                                          (["--debug", "render", "a.txt"], "render"),
                                          (["import", "x.mid"], "import"),
                                          (["compose", "--help"], "compose")])
def test_a_named_command_is_the_only_one_built(args, command):
    chosen = invoked(app, args)
    assert names(chosen) == [command]
    assert chosen.registered_callback is app.registered_callback  # --debug still parsed
    assert len(app.registered_commands) > 1  # the app itself is untouched


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"], ["--help", "compose"], ["compse"],
                                  ["--debug=1", "compose"], ["--debug"]])
def test_every_other_run_gets_the_whole_app(args):
    assert invoked(app, args) is app


@pytest.mark.parametrize("args,code,shown", [(["compose", "--bogus"], 2, "No such option"),
                                             (["compse"], 2, "Did you mean 'compose'?"),
                                             (["--help"], 0, "devices"),
                                             (["compose", "--help"], 0, "--temperature")])
def test_help_and_errors_read_as_from_the_whole_app(cli, args, code, shown):
    status, out, err = cli(*args)
    assert status == code and shown in out + err



def test_the_objects_are_frozen_at_exit_not_before(tmp_path):
    code = ("import atexit, gc\nfrom synth.cli.startup import quick_exit\n"
            "atexit.register(lambda: print('at exit', gc.get_freeze_count() > 0))\n"
            "quick_exit(); quick_exit()\nprint('now', gc.get_freeze_count())")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["now", "0", "at", "exit", "True"]
