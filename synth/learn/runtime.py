"""TensorFlow as training runs it: imported quietly, the CPU split into devices, the distribution strategy, and this worker's place in a cluster."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

from synth.errors import SynthError

STRATEGIES = ("default", "mirrored", "multiworker")

# What TensorFlow's C++ side writes to stderr while it loads, before absl's logging starts (so
# TF_CPP_MIN_LOG_LEVEL cannot hide it): absl's notice, its log lines ("I0000 00:00:17964...
# 15398 port.cc:153] oneDNN custom operations are on...", "Could not find cuda drivers",
# "failed call to cuInit") and the second line of the CPU-instructions notice.
CHATTER = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called"
                     r"|[IWE]\d{4} \d+:\d+:\d+\.\d+ +\d+ \S+:\d+\] "
                     r"|To enable the following instructions: ")


def load_tensorflow(cpu_devices: int = 1, quiet: bool = True):
    """Import TensorFlow (and Keras), splitting the CPU into logical devices if asked.

    `quiet` hides TensorFlow's start-up chatter and its log lines, warnings and Python logging
    (`synth --debug` keeps them); numerics are untouched (oneDNN stays on)."""
    if quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # a level the user set wins
        warnings.filterwarnings("ignore", module=r"(tensorflow|keras)(\.|$)")
    hide = quiet and "tensorflow" not in sys.modules  # once loaded, it has said its piece
    try:
        with _stderr_filtered() if hide else contextlib.nullcontext():
            import tensorflow as tf
            import keras  # noqa: F401  (loaded here, so that its import is quiet too)
    except ImportError:
        raise SynthError("training needs TensorFlow: pip install 'synth[train]'") from None
    if quiet:
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
    if cpu_devices > 1:
        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
        except RuntimeError:
            pass  # already initialised in this process: keep what it has
    return tf


@contextlib.contextmanager
def _stderr_filtered() -> Iterator[None]:
    """Sends file descriptor 2 to a file while TensorFlow loads (its C++ side writes there
    before Python could filter anything), then writes back every line that is not CHATTER."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(True)
                    if not CHATTER.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def make_strategy(name: str, quiet: bool = True):
    """The tf.distribute strategy of `--strategy NAME` (one of STRATEGIES)."""
    tf = load_tensorflow(quiet=quiet)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if "TF_CONFIG" not in os.environ:
        raise SynthError("--strategy multiworker needs TF_CONFIG describing the cluster "
                         "(see the README)")
    return tf.distribute.MultiWorkerMirroredStrategy()


def worker_index() -> int:
    """This process's worker number in the TF_CONFIG cluster (0 alone, or for the chief)."""
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return 0 if task.get("type", "worker") == "chief" else int(task.get("index", 0))


def is_chief(strategy: str) -> bool:
    """In a multi-worker cluster only worker 0 (or the chief) writes the model."""
    return strategy != "multiworker" or worker_index() == 0
