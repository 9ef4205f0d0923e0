"""TensorFlow as training runs it: imported, the CPU split into devices, the distribution strategy, and this worker's place in a cluster."""

from __future__ import annotations

import json
import os

from synth.errors import SynthError

STRATEGIES = ("default", "mirrored", "multiworker")


def load_tensorflow(cpu_devices: int = 1):
    """Import TensorFlow quietly, splitting the CPU into logical devices if asked."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ chatter (CUDA probing) off
    try:
        import tensorflow as tf
    except ImportError:
        raise SynthError("training needs TensorFlow: pip install 'synth[train]'") from None
    if cpu_devices > 1:
        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
        except RuntimeError:
            pass  # already initialised in this process: keep what it has
    return tf


def make_strategy(name: str):
    """The tf.distribute strategy of `--strategy NAME` (one of STRATEGIES)."""
    tf = load_tensorflow()
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
