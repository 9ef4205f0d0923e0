"""Styles: a style is a model folder, chosen by name (issue 11). No TensorFlow, no NumPy.

`default` is the working directory's `model/`, else the default packaged with synth; any other
style NAME is the working directory's `models/NAME/`, else a style packaged in
`synth/assets/styles/NAME/` (Bach chorales, O'Neill's Irish tunes, Aird's Scottish airs). A
working-directory folder wins over a packaged one of the same name, as `model/` always has.
A folder counts as installed once it holds a model manifest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth.errors import SynthError

DEFAULT = "default"
MANIFEST = "manifest.json"  # the model folder's manifest (synth.learn.model reads it)
PACKAGE = Path(__file__).parent.parent  # the synth package
PACKAGED_DEFAULT = PACKAGE / "assets" / "model"
PACKAGED_STYLES = PACKAGE / "assets" / "styles"
DEFAULT_FOLDER = "model"  # in the working directory
STYLES_FOLDER = "models"  # in the working directory: models/NAME/
# A style's name is a folder name, so nothing a user (or a browser) types can reach elsewhere.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
NAME_EXPECTED = "expected letters, digits, '-' and '_' (up to 64, starting with a letter or digit)"


@dataclass(frozen=True)
class Style:
    """A model folder and the name it is chosen by."""

    name: str  # "default", "chorales", "irish", "scottish", or a user's own
    path: Path  # the model folder
    packaged: bool  # shipped in the package (False: the working directory's model/, models/NAME/)

    @property
    def where(self) -> str:
        return "package" if self.packaged else "working directory"

    def manifest(self) -> dict[str, Any]:
        """The model's manifest (training and held-out metrics), or {} if it cannot be read:
        loading the model is what reports a damaged folder."""
        try:
            manifest = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return {}
        return manifest if isinstance(manifest, dict) else {}


def check_name(name: str) -> str:
    """A style name that is also a safe folder name; anything else is a SynthError."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SynthError(f"style {name!r} is not a style name: {NAME_EXPECTED}")
    return name


def folder(name: str, root: Path = Path(".")) -> Path:
    """Where `synth train --style NAME` writes: model/ for the default, else models/NAME/."""
    name = check_name(name)
    return Path(root) / (DEFAULT_FOLDER if name == DEFAULT else Path(STYLES_FOLDER, name))


def _is_model(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def _default(root: Path) -> Style | None:
    local = Path(root) / DEFAULT_FOLDER
    if _is_model(local):
        return Style(DEFAULT, local, packaged=False)
    if _is_model(PACKAGED_DEFAULT):
        return Style(DEFAULT, PACKAGED_DEFAULT, packaged=True)
    return None


def _named(parent: Path, packaged: bool) -> dict[str, Style]:
    """The styles in a folder of model folders (names that are not style names are skipped,
    and so is `default`, which is always model/)."""
    if not parent.is_dir():
        return {}
    return {p.name: Style(p.name, p, packaged) for p in parent.iterdir()
            if NAME.fullmatch(p.name) and p.name != DEFAULT and _is_model(p)}


def installed(root: Path = Path(".")) -> list[Style]:
    """Every style: the default first, then by name; a working-directory folder wins over a
    packaged one of the same name."""
    found = {**_named(PACKAGED_STYLES, packaged=True),
             **_named(Path(root) / STYLES_FOLDER, packaged=False)}
    default = _default(root)
    return ([default] if default else []) + [found[name] for name in sorted(found)]


def find(name: str | None, root: Path = Path(".")) -> Style:
    """The style called `name` (None or "default": the default model); a name not installed is
    a SynthError naming the installed styles."""
    if name is None or name == DEFAULT:
        default = _default(root)
        if default is None:
            raise SynthError(f"no default model in ./{DEFAULT_FOLDER} or the installed package; "
                             "train one with `synth train`")
        return default
    check_name(name)
    for style in installed(root):
        if style.name == name:
            return style
    names = ", ".join(s.name for s in installed(root)) or "none"
    raise SynthError(f"style '{name}' is not installed (installed: {names}); train it with "
                     f"`synth train --style {name}`")


def model_folder(style: str | None, model: Path | str | None,
                 root: Path = Path(".")) -> Path | None:
    """The model folder that `--style` or `--model` names (None: the default rule). Both at
    once is an error: each names a model folder."""
    if style is not None and model is not None:
        raise SynthError(f"--style {style} and --model {model} both name a model: give one")
    if style is not None:
        return find(style, root).path
    return None if model is None else Path(model)
