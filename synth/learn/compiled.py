"""The optional C extension (synth/learn/_ppmcore.c) that the memory and the LSTM cell run
their per-step work in, or None where it is not built."""

from __future__ import annotations

import os
from types import ModuleType


def load() -> ModuleType | None:
    """The compiled per-step work (synth/learn/_ppmcore.c), or None: not built, or SYNTH_NO_C set
    (read once, at import) to run the NumPy code alone. No warning: synth is only slower."""
    if os.environ.get("SYNTH_NO_C", "") not in ("", "0"):
        return None
    try:
        from synth.learn import _ppmcore
    except ImportError:
        return None
    return _ppmcore


# Read when a memory or an LSTM runner is made (never per step): objects made after setting it
# to None run the NumPy code alone, as tests and bench/step.py do.
core = load()
