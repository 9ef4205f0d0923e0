"""The one gate for paths a browser names: only files inside the working directory's
dataset/, out/, model/ and models/ get through, and never by `..`, an absolute path, a hidden
file or a link that leads out of those folders."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from synth.errors import SynthError

FOLDERS = ("dataset", "out", "model", "models")
SONG_SUFFIXES = (".txt", ".mid", ".midi")
AUDIO_SUFFIXES = (".wav",)
log = logging.getLogger("synth.studio")


class Refused(SynthError):
    """A request for a path the studio will not touch; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def inside(root: Path, relative: str, suffixes: tuple[str, ...] = SONG_SUFFIXES + AUDIO_SUFFIXES,
           must_exist: bool = True) -> Path:
    """`root / relative` if it is a file in one of FOLDERS (or may become one); else Refused."""
    if not isinstance(relative, str) or not relative or len(relative) > 500:
        raise _refuse(relative, "expected a path such as dataset/NAME.txt")
    if "\\" in relative or "\x00" in relative or relative.startswith("/") or \
            re.match(r"^[A-Za-z]:", relative):
        raise _refuse(relative, "expected a relative path with forward slashes")
    parts = relative.split("/")
    if parts[0] not in FOLDERS or len(parts) < 2:
        raise _refuse(relative, f"expected a file in {', '.join(f + '/' for f in FOLDERS)}")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise _refuse(relative, "'..', '.', empty and hidden names are not allowed")
    if Path(parts[-1]).suffix.lower() not in suffixes:
        raise _refuse(relative, f"expected a {', '.join(suffixes)} file")
    base = (Path(root) / parts[0]).resolve()
    path = Path(root).joinpath(*parts)
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a link loop
        raise _refuse(relative, "cannot be followed") from None
    if not real.is_relative_to(base):
        raise _refuse(relative, f"leads out of {parts[0]}/")
    if must_exist and not real.is_file():
        raise Refused(f"{relative}: no such file", status=404)
    return path


def _refuse(relative: object, why: str) -> Refused:
    shown = repr(relative)[:80]
    log.warning("refused a request for %s: %s", shown, why)
    return Refused(f"{shown} is not a file the studio serves: {why}")
