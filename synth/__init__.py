"""synth: record melodies, train a small LSTM on them, compose and play along with a piano."""

from synth.errors import SynthError

__version__ = "0.1.0"
__all__ = ["SynthError", "__version__"]
