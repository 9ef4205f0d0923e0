"""The `synth` command line: typer commands that parse, call synth.api and the wings, and print. Imports anything below it (synth.studio to start the studio); nothing imports it."""

import os

# synth's NumPy products are one row (generation) or a small batch (scoring): OpenBLAS's worker
# threads gain nothing there, yet start with NumPy and spin a while, taking the second core from
# the effects' helper thread. Set before the commands (which read defaults) import NumPy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from synth.cli.commands import app, main  # noqa: E402

__all__ = ["app", "main"]
