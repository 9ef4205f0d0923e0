"""Every numeric flag of every command refuses values outside its range with the usual one-line
error (exit status 2, `error: ...`, no traceback, nothing written).

The flags are found by walking the typer app, so a numeric flag added later is walked too; it
then needs only a line in base_args (if its command is new) and, if 0 or -1 is legitimately in
its range, a line in IN_RANGE.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from conftest import make_midi
from synth.cli import app

FLOAT_VALUES = ["0", "-1", "nan", "inf", "-inf", "1e12"]
INT_VALUES = ["0", "-1", str(10**12)]
NOT_INTS = ["nan", "1.5"]  # typer refuses these itself, before synth sees them

# Values of the walked set that are legitimately in range: each must NOT be refused for its
# range. (flag, value) -> the flag's real allowed range. Every other walked value is refused:
# --seconds 0 too (a take must last above 0 s), as are --top-p 0, --gap 0, --speed 0.
IN_RANGE = {
    ("--seed", "0"): "0-4294967295 (compose, render, live, train): the same seed, the same result",
    ("--count-in", "0"): "0-32 beats: no count-in",
    ("--humanize", "0"): "0-1: a steady pianist (the default)",
    ("--room-size", "0"): "0-1: the smallest room",
    ("--wet", "0"): "0-1: no reverb heard",
    ("--val-fraction", "0"): "0 up to below 1: hold no songs out",
    ("--lr-half-life", "0"): "0 (a constant learning rate) or above 0, up to 10000 epochs",
}

SONG = "13 15:2 17 0 20:1/2 13:4\n"


def numeric_options() -> list[tuple[str, str, bool]]:
    """(command, flag, is_float) for every int or float option of every command."""
    group = typer.main.get_command(app)
    found = []
    for name, command in sorted(group.commands.items()):
        for param in command.params:
            # typer carries its own click (typer._click): go by the names of its types,
            # "int" and "float" (and "integer range", "float range")
            kind = getattr(param.type, "name", "")
            if param.param_type_name == "option" and kind.startswith(("int", "float")):
                flag = next(o for o in param.opts if o.startswith("--"))
                found.append((name, flag, kind.startswith("float")))
    return found


OPTIONS = numeric_options()
IS_FLOAT = {(command, flag): is_float for command, flag, is_float in OPTIONS}
CASES = [(command, flag, value) for command, flag, is_float in OPTIONS
         for value in (FLOAT_VALUES if is_float else INT_VALUES)]
REFUSED = [case for case in CASES if case[1:] not in IN_RANGE]
ACCEPTED = [case for case in CASES if case[1:] in IN_RANGE]
NOT_NUMBERS = [(command, flag, value) for command, flag, is_float in OPTIONS if not is_float
               for value in NOT_INTS]


def base_args(command: str, tmp_path: Path, model: Path) -> list[str]:
    """The fewest arguments that take `command` to its checks with every other input good."""
    replay = make_midi(tmp_path / "phrase.mid", [[(0.0, 0.1, 60)]], tempos=[(0.0, 60.0)])
    (tmp_path / "song.txt").write_text(SONG)
    (tmp_path / "songs").mkdir()
    (tmp_path / "songs" / "a.txt").write_text(SONG)
    return {
        "compose": ["--model", model, "--notes", "4", "--out", "x.wav"],
        "render": ["song.txt", "--out", "x.wav"],
        "record": ["--input", f"replay:{replay}", "--count-in", "0", "--bpm", "400"],
        "live": ["--input", f"replay:{replay}", "--model", model, "--output", "wav:x.wav",
                 "--gap", "0.1", "--bpm", "400"],
        # No dataset: a value that passes the checks stops at "no such folder", quickly and
        # before TensorFlow starts; a value out of range must be refused before that.
        "train": ["--dataset", "no-dataset", "--model", "model-out"],
        "evaluate": ["--model", model, "--dataset", "songs", "--training", "songs"],
        "studio": ["--no-browser"],  # a port out of range is refused before anything listens
    }[command]


def with_flag(args: list, flag: str, value: str) -> list:
    """`args` with `flag value` in place of any value it had."""
    args = [str(a) for a in args]
    if flag in args:
        at = args.index(flag)
        del args[at:at + 2]
    return [*args, flag, value]


def files_in(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


def test_the_walk_finds_every_commands_numeric_flags():
    walked = {(command, flag) for command, flag, _ in OPTIONS}
    for command, flag in [("compose", "--notes"), ("compose", "--bpm"), ("compose", "--seed"),
                          ("compose", "--temperature"), ("compose", "--top-p"),
                          ("compose", "--cutoff"), ("render", "--humanize"),
                          ("record", "--count-in"), ("record", "--seconds"),
                          ("record", "--speed"), ("live", "--gap"), ("live", "--respond"),
                          ("live", "--bpm"), ("train", "--epochs"),
                          ("train", "--learning-rate"), ("train", "--cpu-devices"),
                          ("evaluate", "--compose"), ("studio", "--port")]:
        assert (command, flag) in walked
    # a command with a numeric flag needs its line in base_args
    assert {command for command, _, _ in OPTIONS} <= {"compose", "render", "record", "live",
                                                       "train", "evaluate", "studio"}


@pytest.mark.parametrize("command,flag,value", REFUSED, ids=[" ".join(c) for c in REFUSED])
def test_a_value_out_of_range_is_a_one_line_error(cli, tmp_path, tiny_model, command, flag,
                                                  value):
    args = with_flag(base_args(command, tmp_path, tiny_model), flag, value)
    before = files_in(tmp_path)
    code, out, err = cli(command, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    shown = format(float(value), "g") if IS_FLOAT[command, flag] else str(int(value))
    assert flag in lines[0] and shown in lines[0] and "out of range" in lines[0], lines[0]
    assert "expected" in lines[0], lines[0]  # the range it wanted
    assert "Traceback" not in out + err
    assert files_in(tmp_path) == before


@pytest.mark.parametrize("command,flag,value", NOT_NUMBERS,
                         ids=[" ".join(c) for c in NOT_NUMBERS])
def test_a_value_that_is_no_whole_number_is_typers_usage_error(cli, tmp_path, tiny_model,
                                                                 command, flag, value):
    # Typer (click) refuses these before synth runs: its usage message, in a box, exit 2.
    args = with_flag(base_args(command, tmp_path, tiny_model), flag, value)
    before = files_in(tmp_path)
    code, out, err = cli(command, *args)
    assert code == 2, (out, err)
    assert "Invalid value" in err and flag in err and f"{value!r} is not a valid int" in err, err
    assert "Traceback" not in out + err
    assert files_in(tmp_path) == before


@pytest.mark.parametrize("command,flag,value", ACCEPTED, ids=[" ".join(c) for c in ACCEPTED])
def test_a_value_in_range_is_not_refused(cli, tmp_path, tiny_model, command, flag, value):
    args = with_flag(base_args(command, tmp_path, tiny_model), flag, value)
    code, out, err = cli(command, *args)
    assert "Traceback" not in out + err
    assert not any(flag in line for line in err.splitlines()), err
    if command == "train":  # passed every check; stopped at the missing dataset
        assert code == 2 and "no-dataset: no such folder" in err, err
    else:
        assert code == 0, err
