"""synth: record melodies, train a small LSTM on them, compose and play along with a piano.

The Python API (`synth.compose`, `synth.render`, ...) lives in synth/api.py and is loaded on
first use, so `import synth` stays cheap and never imports TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synth.errors import SynthError

__version__ = "0.1.0"

# name -> module that holds it, imported when the name is first used (PEP 562)
_LAZY = {
    "load_model": "synth.api", "compose": "synth.api", "render": "synth.api",
    "read_song": "synth.api", "write_song": "synth.api", "write_midi": "synth.api",
    "piano_roll": "synth.api", "read_primer": "synth.api",
    "Event": "synth.music.events", "Song": "synth.music.songs", "Effects": "synth.sound.effects",
    "Model": "synth.learn.model",
}
__all__ = ["SynthError", "__version__", "load_model", "compose", "render", "read_song",
           "write_song", "write_midi", "piano_roll", "read_primer", "Event", "Song", "Effects",
           "Model"]

if TYPE_CHECKING:
    from synth.api import (compose, load_model, piano_roll, read_primer, read_song, render,
                           write_midi, write_song)
    from synth.sound.effects import Effects
    from synth.music.events import Event
    from synth.learn.model import Model
    from synth.music.songs import Song


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'synth' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
