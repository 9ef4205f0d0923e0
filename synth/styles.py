"""Styles: a style is a model folder, the default (`model/`, else the packaged model) or
`models/NAME/` under the working directory. No TensorFlow, cheap to import.

A minimal version for the studio; the styles work replaces it with the full one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synth.errors import SynthError

DEFAULT = "default"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Style:
    name: str
    path: Path
    packaged: bool


def _default(root: Path) -> Style:
    from synth.modelfile import PACKAGED_MODEL

    local = Path(root) / "model"
    if (local / MANIFEST).is_file():
        return Style(DEFAULT, local, packaged=False)
    return Style(DEFAULT, Path(PACKAGED_MODEL), packaged=True)


def installed(root: Path = Path(".")) -> list[Style]:
    """The default style first, then every models/NAME/ holding a manifest, by name."""
    folder = Path(root) / "models"
    found = sorted(p for p in folder.glob("*/") if (p / MANIFEST).is_file()) \
        if folder.is_dir() else []
    return [_default(root)] + [Style(p.name, p, packaged=False) for p in found
                               if p.name != DEFAULT]


def find(name: str | None, root: Path = Path(".")) -> Style:
    """The style called `name` (None or 'default': the default model); unknown is an error."""
    styles = installed(root)
    wanted = name or DEFAULT
    for style in styles:
        if style.name == wanted:
            return style
    raise SynthError(f"no style called '{wanted}': expected one of "
                     f"{', '.join(s.name for s in styles)} (a style is a model folder "
                     f"models/NAME/; train one with synth train --model models/NAME)")
