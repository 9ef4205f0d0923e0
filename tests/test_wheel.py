"""synth as a user installs it: the sdist and the wheel built from a clean clone of this
repository at HEAD (commit first: what is not committed is not tested), installed by its
distribution's name into a fresh virtual environment without TensorFlow, composing from an
empty folder with the model the package carries.

Offline: the dependencies come from the wheelhouse `make` fills (.venv/wheelhouse, beside the
Python that runs the tests). Without it the slow tests skip, unless SYNTH_REQUIRE_WHEEL=1 (as
.ci/run sets it), where they fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
NAME = PROJECT["project"]["name"]
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
C_SOURCE = "synth/learn/_ppmcore.c"  # in the sdist; the wheel carries it compiled
SDIST_EXTRAS = {"pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "PKG-INFO", "setup.cfg"}


def tracked(root: Path, folder: str = "synth") -> set[str]:
    """The files git tracks under `folder` of the checkout at `root`."""
    listed = subprocess.run(["git", "ls-files", "-z", folder], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    return {name for name in listed.split("\0") if name}


def ships(name: str, pattern: str) -> bool:
    """Whether a package-data glob takes the file: `*` stands for one path part, as there."""
    path, glob = PurePosixPath(name), PurePosixPath(pattern)
    return len(path.parts) == len(glob.parts) and path.match(pattern)


def test_package_data_covers_every_file_synth_tracks_besides_its_modules():
    """Quick, without building: a new asset git tracks in synth/ but no package-data pattern
    names would be left out of the wheel."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    patterns = [f"synth/{p}" for p in PROJECT["tool"]["setuptools"]["package-data"]["synth"]]
    data = {name for name in tracked(REPO) if not name.endswith(".py") and name != C_SOURCE}
    assert data, "no assets found"
    missed = {name for name in data if not any(ships(name, p) for p in patterns)}
    assert not missed, f"not in pyproject.toml's package-data: {sorted(missed)}"


# --- the slow part: build, install, compose ---------------------------------------------------


@dataclass(frozen=True)
class Built:
    clone: Path
    sdist: Path
    wheel: Path
    venv: Path  # the fresh environment the wheel is installed in
    empty: Path  # a folder with nothing in it, the working directory of the runs below
    env: dict[str, str]


def required() -> bool:
    return os.environ.get("SYNTH_REQUIRE_WHEEL") == "1"


def missing() -> str | None:
    """Why the wheel cannot be built and installed here, or None."""
    if not list(WHEELHOUSE.glob("setuptools-*.whl")):
        return (f"no wheelhouse at {WHEELHOUSE} (`make test` fills it: the runtime dependencies "
                f"and setuptools, to install offline)")
    if shutil.which("git") is None or not (REPO / ".git").exists():
        return "needs git and a git checkout to clone"
    return None


def run(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; its output in the failure's message when it fails."""
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, (f"{' '.join(map(str, command))} exited {done.returncode}\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def venv(folder: Path, *packages: str | Path) -> Path:
    """A fresh virtual environment with only `packages` (and their dependencies) installed,
    from the wheelhouse, never the network; returns its Python."""
    run([sys.executable, "-m", "venv", "--without-pip", folder], cwd=folder.parent)
    python = folder / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index",
         "--find-links", WHEELHOUSE, *packages], cwd=folder.parent)
    return python


def build_hook(python: Path, source: Path, hook: str, out: Path) -> Path:
    """Call setuptools' PEP 517 `hook` (build_sdist, build_wheel) on `source`, as pip does."""
    name = run([python, "-c", f"import sys; from setuptools import build_meta; "
                f"print(build_meta.{hook}(sys.argv[1]))", out], cwd=source).split()[-1]
    return out / name


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    why = missing()
    if why:
        if required():
            pytest.fail(f"SYNTH_REQUIRE_WHEEL=1 but {why}")
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("wheel")
    clone = tmp / "clone"
    run(["git", "clone", "--quiet", REPO, clone], cwd=tmp)
    # Build as `python -m build` does: the sdist from the clone, the wheel from the sdist.
    builder = venv(tmp / "build-venv", "setuptools")
    dist = tmp / "dist"
    dist.mkdir()
    sdist = build_hook(builder, clone, "build_sdist", dist)
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp / "unpacked", filter="data")
    (source,) = (tmp / "unpacked").iterdir()
    wheel = build_hook(builder, source, "build_wheel", dist)
    python = venv(tmp / "venv", wheel)
    empty = tmp / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return Built(clone, sdist, wheel, python.parent.parent, empty, env)


@pytest.mark.slow
def test_the_sdist_and_the_wheel_carry_what_git_tracks_and_nothing_else(built):
    synth = tracked(built.clone)
    assert C_SOURCE in synth and "synth/assets/model/manifest.json" in synth
    with tarfile.open(built.sdist) as archive:
        in_sdist = {str(PurePosixPath(*PurePosixPath(m.name).parts[1:]))
                    for m in archive.getmembers() if m.isfile()}
    egg_info = {name for name in in_sdist if ".egg-info/" in name}
    assert in_sdist - egg_info == synth | SDIST_EXTRAS

    with zipfile.ZipFile(built.wheel) as archive:
        in_wheel = {name for name in archive.namelist() if ".dist-info/" not in name}
    compiled = {name for name in in_wheel if name.startswith("synth/learn/_ppmcore.")}
    assert in_wheel - compiled == synth - {C_SOURCE}
    built_here = any((REPO / C_SOURCE).parent.glob("_ppmcore.*.so"))  # a compiler works here
    if os.environ.get("SYNTH_REQUIRE_C") or built_here:
        assert len(compiled) == 1 and next(iter(compiled)).endswith((".so", ".pyd")), compiled


@pytest.mark.slow
def test_the_command_composes_a_song_from_an_empty_folder(built):
    run(["synth", "compose", "--notes", 20, "--seed", 1, "--out", "song.wav"], built.empty,
        built.env)
    assert sorted(p.name for p in built.empty.iterdir()) == ["song.wav"]
    audio, rate = soundfile.read(built.empty / "song.wav")
    assert rate == 44100 and audio.ndim == 2 and len(audio) > rate  # 20 events: seconds long
    assert 0.01 < np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio ** 2)) > 1e-3


@pytest.mark.slow
def test_the_api_composes_with_the_packaged_model_and_never_imports_tensorflow(built):
    code = ("import json, sys, synth; events = synth.compose(notes=10); "
            "print(json.dumps({'events': len(events), 'synth': synth.__file__, "
            "'model': str(synth.load_model().path), 'tensorflow': 'tensorflow' in sys.modules}))")
    found = json.loads(run([built.venv / "bin" / "python", "-c", code], built.empty, built.env))
    assert found["events"] == 10 and not found["tensorflow"]
    package = Path(found["synth"]).parent
    assert package.is_relative_to(built.venv)  # the installed wheel, not this checkout
    assert Path(found["model"]) == package / "assets" / "model"


@pytest.mark.slow
def test_it_is_installed_by_its_name_and_tensorflow_is_not(built):
    code = ("import importlib.metadata as m, importlib.util as u, json; print(json.dumps({"
            "'names': sorted(d.metadata['Name'].lower() for d in m.distributions()), "
            f"'version': m.version({NAME!r}), "
            "'importable': [n for n in ('tensorflow', 'keras') if u.find_spec(n)]}))")
    found = json.loads(run([built.venv / "bin" / "python", "-c", code], built.empty, built.env))
    assert NAME in found["names"] and found["version"] == PROJECT["project"]["version"]
    assert not [n for n in found["names"] if n.startswith(("tensorflow", "keras", "tf-"))]
    assert found["importable"] == []
    assert (built.venv / "bin" / "synth").is_file()
