"""Styles: finding and listing model folders by name, their precedence, the shipped styles,
training a style on a share of the dataset, and composing, evaluating and playing in one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import BLOCK_TENSORFLOW, make_midi, random_weights
from synth import api
from synth.learn import styles
from synth.errors import SynthError
from synth.music.events import Event
from synth.learn.model import PACKAGED_MODEL, find_model, save_model
from synth.music.songs import Song, by_source, load_dataset, read_song, write_song

SHIPPED = ("chorales", "irish", "scottish")
REPO = Path(__file__).resolve().parent.parent


def make_model(folder: Path, seed: int = 0, songs: int = 7, joint: float = 3.5) -> Path:
    """A small random model folder whose manifest says what a trained one says."""
    save_model(folder, random_weights(seed=seed), {
        "start_probs": [0.0] + [1 / 24] * 24,
        "training": {"songs": songs, "training_songs": songs - 2, "held_out_songs": ["a", "b"]},
        "metrics": {"evaluated_on": "held-out songs", "events": 40, "class_bits": joint - 1,
                    "length_bits": 1.0, "joint_bits": joint}})
    return folder


@pytest.fixture
def packaged(tmp_path, monkeypatch):
    """An empty stand-in for synth/assets/styles, so a test sees only the styles it makes."""
    folder = tmp_path / "package-styles"
    folder.mkdir()
    monkeypatch.setattr(styles, "PACKAGED_STYLES", folder)
    return folder


# --- finding and listing ----------------------------------------------------------------------


def test_the_default_is_model_in_the_working_directory_else_the_packaged_one(tmp_path):
    for name in (None, "default"):
        style = styles.find(name, tmp_path)
        assert style == styles.Style("default", PACKAGED_MODEL, packaged=True)
    make_model(tmp_path / "model")
    style = styles.find(None, tmp_path)
    assert style == styles.Style("default", tmp_path / "model", packaged=False)
    assert style.where == "working directory"


def test_the_default_model_rule_is_the_one_compose_has_always_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_model(None) == styles.find(None).path == PACKAGED_MODEL
    make_model(tmp_path / "model")
    assert find_model(None) == styles.find(None).path == Path("model")


def test_installed_lists_the_default_first_then_by_name(tmp_path, packaged):
    make_model(packaged / "waltz")
    make_model(packaged / "airs")
    make_model(tmp_path / "models" / "mine")
    make_model(tmp_path / "models" / "Blues")
    found = styles.installed(tmp_path)
    assert [s.name for s in found] == ["default", "Blues", "airs", "mine", "waltz"]
    assert [s.packaged for s in found] == [True, False, True, False, True]
    assert found[3].path == tmp_path / "models" / "mine"


def test_a_working_directory_style_wins_over_a_packaged_one_of_the_same_name(tmp_path,
                                                                             packaged):
    make_model(packaged / "irish")
    assert styles.find("irish", tmp_path) == styles.Style("irish", packaged / "irish", True)
    make_model(tmp_path / "models" / "irish")
    local = styles.Style("irish", tmp_path / "models" / "irish", packaged=False)
    assert styles.find("irish", tmp_path) == local
    assert [s for s in styles.installed(tmp_path) if s.name == "irish"] == [local]


def test_folders_that_are_not_styles_are_left_out(tmp_path, packaged):
    (tmp_path / "models" / "half-written").mkdir(parents=True)  # no manifest
    (tmp_path / "models" / "notes.txt").write_text("not a folder")
    make_model(tmp_path / "models" / ".hidden")
    make_model(tmp_path / "models" / "default")  # the default is always model/
    make_model(tmp_path / "models" / "ok")
    assert [s.name for s in styles.installed(tmp_path)] == ["default", "ok"]
    assert styles.find("default", tmp_path).path == PACKAGED_MODEL
    with pytest.raises(SynthError, match="'half-written' is not installed"):
        styles.find("half-written", tmp_path)


def test_an_unknown_style_names_the_installed_ones(tmp_path, packaged):
    make_model(tmp_path / "models" / "mine")
    make_model(packaged / "airs")
    with pytest.raises(SynthError) as caught:
        styles.find("jazz", tmp_path)
    message = str(caught.value)
    assert "'jazz' is not installed (installed: default, airs, mine)" in message
    assert "synth train --style jazz" in message and "\n" not in message


@pytest.mark.parametrize("name", ["", "../model", "a/b", "/etc", ".hidden", "-x", "a b",
                                  "a" * 65, "ü", "x\n"])
def test_a_name_that_is_not_a_folder_name_is_refused(tmp_path, name):
    with pytest.raises(SynthError, match="is not a style name: expected letters, digits"):
        styles.find(name, tmp_path)
    with pytest.raises(SynthError, match="is not a style name"):
        styles.folder(name, tmp_path)


def test_train_writes_model_for_the_default_and_models_name_for_a_style(tmp_path):
    assert styles.folder("default", tmp_path) == tmp_path / "model"
    assert styles.folder("waltz", tmp_path) == tmp_path / "models" / "waltz"


def test_style_and_model_together_are_refused(tmp_path, packaged):
    make_model(tmp_path / "models" / "mine")
    assert styles.model_folder("mine", None, tmp_path) == tmp_path / "models" / "mine"
    assert styles.model_folder(None, "elsewhere", tmp_path) == Path("elsewhere")
    assert styles.model_folder(None, None, tmp_path) is None
    with pytest.raises(SynthError, match="--style mine and --model elsewhere both name a model"):
        styles.model_folder("mine", "elsewhere", tmp_path)


def test_a_damaged_manifest_reads_as_empty_and_loading_reports_it(tmp_path, packaged):
    make_model(tmp_path / "models" / "broken")
    (tmp_path / "models" / "broken" / "manifest.json").write_text("{not json")
    style = styles.find("broken", tmp_path)
    assert style.manifest() == {}
    with pytest.raises(SynthError, match="not a readable model manifest"):
        api.load_model(style.path)


# --- the shipped styles -----------------------------------------------------------------------


def test_the_package_ships_three_styles_trained_on_their_sources(tmp_path):
    found = {s.name: s for s in styles.installed(tmp_path)}
    assert list(found)[0] == "default" and set(SHIPPED) <= set(found)
    dataset = load_dataset(REPO / "dataset")
    sources = {"chorales": "J. S. Bach", "irish": "O'Neill", "scottish": "Aird"}
    everything = found["default"].manifest()["training"]["songs"]
    total = 0
    for name in SHIPPED:
        style = found[name]
        assert style.packaged and style.path == styles.PACKAGED_STYLES / name
        manifest = style.manifest()
        own = by_source(dataset, [sources[name]])
        assert manifest["training"]["songs"] == len(own)
        assert manifest["metrics"]["evaluated_on"] == "held-out songs"
        assert set(manifest["training"]["held_out_songs"]) <= {s.name for s in own}
        assert 0 < manifest["metrics"]["joint_bits"] < 8
        total += len(own)
        model = api.load_model(style=name)
        assert model.has_lengths and model.path == style.path
    assert total == everything == len(dataset)  # the three sources are the whole dataset


def length_histogram(songs) -> np.ndarray:
    counts = np.bincount([e.quarters for events in songs for e in events], minlength=33)
    return counts / counts.sum()


def test_each_shipped_style_composes_rhythms_nearest_its_own_source(tmp_path, monkeypatch):
    """Chorales move in beats and half notes, O'Neill's and Aird's tunes in half beats: pooled
    over 30 composed songs, each style's lengths lie nearest its own source's (total variation
    distance), and the four models compose different songs from the same seed."""
    monkeypatch.chdir(tmp_path)
    dataset = load_dataset(REPO / "dataset")
    sources = {"chorales": "J. S. Bach", "irish": "O'Neill", "scottish": "Aird"}
    real = {name: length_histogram(s.events for s in by_source(dataset, [text]))
            for name, text in sources.items()}
    for name in SHIPPED:
        composed = length_histogram(api.compose(notes=100, style=name, seed=seed)
                                    for seed in range(30))
        distance = {source: 0.5 * np.abs(composed - h).sum() for source, h in real.items()}
        assert min(distance, key=distance.get) == name, distance
    same_seed = {tuple(api.compose(notes=60, style=name, seed=3))
                 for name in ("default", *SHIPPED)}
    assert len(same_seed) == 4


# --- songs from one source --------------------------------------------------------------------


def song(source: str, title: str) -> Song:
    return Song(events=[Event(13, 4), Event(15, 4), Event(17, 8)], title=title, source=source)


def test_by_source_keeps_the_songs_whose_source_contains_the_text_in_any_case():
    songs = [song("J. S. Bach, chorale bwv10.7", "a"), song("O'Neill's Music of Ireland", "b"),
             song("Aird's Selection", "c"), song("", "d")]
    assert [s.title for s in by_source(songs, ["bach"])] == ["a"]
    assert [s.title for s in by_source(songs, ["o'neill", "AIRD"])] == ["b", "c"]
    with pytest.raises(SynthError) as caught:
        by_source(songs, ["Handel"])
    assert str(caught.value) == ("--source Handel: no song's '# source:' line contains it "
                                 "(sources in the dataset: Aird's Selection; J. S. Bach; "
                                 "O'Neill's Music of Ireland)")
    with pytest.raises(SynthError, match="expected some text"):
        by_source(songs, [" "])


# --- the command line -------------------------------------------------------------------------


def test_synth_styles_lists_each_with_its_songs_and_held_out_bits(cli, tmp_path, packaged):
    make_model(packaged / "airs", songs=20, joint=3.25)
    make_model(tmp_path / "models" / "mine", songs=12, joint=4.125)
    code, out, err = cli("styles")
    assert code == 0, err
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert list(rows) == ["default", "airs", "mine"]
    assert "package" in rows["airs"] and " 20 " in rows["airs"] and "3.250" in rows["airs"]
    assert "working" in rows["mine"] and " 12 " in rows["mine"] and "4.125" in rows["mine"]
    assert "3.125" in rows["mine"] and " 2 " in rows["mine"]  # class bits, songs held out


def test_compose_with_a_style_uses_its_folder(cli, tmp_path, packaged):
    make_model(tmp_path / "models" / "mine", seed=5)
    common = ["--notes", "30", "--seed", "2", "--no-fx"]
    assert cli("compose", "--style", "mine", "--tokens", "a.txt", "--out", "a.wav", *common)[0] == 0
    assert cli("compose", "--model", "models/mine", "--tokens", "b.txt", "--out", "b.wav",
               *common)[0] == 0
    assert cli("compose", "--tokens", "c.txt", "--out", "c.wav", *common)[0] == 0
    a, b, c = (read_song(tmp_path / f"{n}.txt").events for n in "abc")
    assert a == b and a != c


@pytest.mark.parametrize("args,message", [
    (["--style", "jazz"], "style 'jazz' is not installed (installed: default, mine)"),
    (["--style", "../model"], "is not a style name"),
    (["--style", "mine", "--model", "models/mine"], "both name a model: give one"),
])
def test_a_bad_style_is_one_line_and_nothing_is_written(cli, tmp_path, packaged, args,
                                                        message):
    make_model(tmp_path / "models" / "mine")
    for command in (["compose", "--notes", "5", "--out", "x.wav"],
                    ["evaluate", "--compose", "1"],
                    ["live", "--input", "replay:p.mid", "--output", "wav:x.wav"]):
        code, out, err = cli(*command, *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "out").exists()


def test_evaluate_and_live_take_a_style(cli, tmp_path, packaged):
    make_model(tmp_path / "models" / "mine")
    for name in "ab":
        write_song(tmp_path / "songs" / f"{name}.txt",
                   Song(events=[Event(13 + i % 5, 2 + i % 3) for i in range(30)]))
    code, out, err = cli("evaluate", "--style", "mine", "--dataset", "songs", "--training",
                         "songs", "--compose", "2")
    assert code == 0, err
    assert "copying:" in out
    make_midi(tmp_path / "p.mid", [[(0, 0.2, 60), (0.2, 0.4, 64)]], tempos=[(0, 60)])
    code, out, err = cli("live", "--style", "mine", "--input", "replay:p.mid", "--output",
                         "wav:x.wav", "--gap", "0.1", "--seed", "1")
    assert code == 0, err
    assert (tmp_path / "x.wav").is_file()


def test_compose_and_live_in_a_shipped_style_never_import_tensorflow(tmp_path):
    make_midi(tmp_path / "p.mid", [[(0, 0.2, 60), (0.2, 0.4, 64)]], tempos=[(0, 60)])
    script = BLOCK_TENSORFLOW + (
        "from synth import cli\n"
        "for args in (['compose', '--style', 'irish', '--notes', '20', '--out', 'a.wav'],\n"
        "             ['live', '--style', 'chorales', '--input', 'replay:p.mid', '--output',\n"
        "              'wav:b.wav', '--gap', '0.1'], ['styles']):\n"
        "    sys.argv = ['synth', *args]\n"
        "    try:\n"
        "        cli.main()\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "assert 'tensorflow' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.wav").is_file() and (tmp_path / "b.wav").is_file()
    assert "irish" in done.stdout and "scottish" in done.stdout


def test_train_refuses_style_with_model_and_an_unmatched_source_before_training(cli, tmp_path):
    write_song(tmp_path / "dataset" / "a.txt", song("Aird's airs", "a"))
    code, _, err = cli("train", "--style", "x", "--model", "elsewhere")
    assert code == 2 and "--style x and --model elsewhere both name" in err
    code, _, err = cli("train", "--style", "../x")
    assert code == 2 and "is not a style name" in err
    code, _, err = cli("train", "--source", "Bach")
    assert code == 2 and "sources in the dataset: Aird's airs" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


# --- the Python API ---------------------------------------------------------------------------


def test_the_api_takes_a_style(tmp_path, monkeypatch, packaged):
    monkeypatch.chdir(tmp_path)
    make_model(tmp_path / "models" / "mine", seed=4)
    model = api.load_model(style="mine")
    assert model.path == Path("models/mine")
    assert api.compose(notes=20, style="mine", seed=1) == api.compose(notes=20, model=model,
                                                                      seed=1)
    assert api.compose(notes=20, style="mine", seed=1) != api.compose(notes=20, seed=1)
    with pytest.raises(SynthError, match="both name a model"):
        api.load_model("models/mine", style="mine")
    with pytest.raises(SynthError, match="both name a model"):
        api.compose(notes=5, model=model, style="mine")
    with pytest.raises(SynthError, match="'jazz' is not installed"):
        api.compose(notes=5, style="jazz")


# --- training a style -------------------------------------------------------------------------


@pytest.mark.slow
def test_train_style_writes_models_name_from_the_chosen_source_and_composes(cli, tmp_path,
                                                                            packaged):
    rng = np.random.default_rng(0)
    for i in range(9):
        source = "Aird's airs" if i < 6 else "someone else"
        events = [Event(int(c), int(q)) for c, q in zip(rng.integers(10, 20, 40),
                                                         rng.choice([2, 4], 40))]
        write_song(tmp_path / "dataset" / f"s{i}.txt",
                   Song(events=events, title=f"s{i}", source=source))
    make_model(tmp_path / "model")
    before = (tmp_path / "model" / "manifest.json").read_bytes()
    code, out, err = cli("train", "--style", "airs", "--source", "aird", "--epochs", "1",
                         "--batch-size", "8")
    assert code == 0, err
    assert "6 of the 9 songs in dataset come from 'aird'" in " ".join(out.split())
    assert "model written to models/airs/" in out
    manifest = json.loads((tmp_path / "models" / "airs" / "manifest.json").read_text())
    assert manifest["training"]["songs"] == 6
    assert set(manifest["training"]["held_out_songs"]) <= {f"s{i}" for i in range(6)}
    assert (tmp_path / "model" / "manifest.json").read_bytes() == before  # the default kept
    code, out, err = cli("styles")
    assert code == 0 and "airs" in out
    code, out, err = cli("compose", "--style", "airs", "--notes", "10", "--out", "a.wav")
    assert code == 0, err
    assert (tmp_path / "a.wav").is_file()
