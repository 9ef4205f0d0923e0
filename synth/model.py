"""The Keras model and its training: the only module that imports TensorFlow (SPEC section 5).

tokens -> one-hot -> LSTM(256) -> Dropout(0.2) -> Dense(25, softmax), trained with teacher
forcing over whole songs cut into chunks, every in-range transposition of each training song,
held-out songs chosen by seed, early stopping on held-out loss with the best weights kept.
Nothing on the compose or live path imports this module.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from synth.errors import SynthError
from synth.evaluation import Metrics, metrics_of
from synth.modelfile import Model, save_model
from synth.ngram import best_baseline
from synth.notes import NUM_CLASSES, REST, class_name
from synth.songs import Song, transpositions

STRATEGIES = ("default", "mirrored", "multiworker")
MIN_SONGS_TO_HOLD_OUT = 5


@dataclass
class TrainSettings:
    """Everything `synth train` can be told; the same settings and seed give the same model."""

    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 3e-3
    val_fraction: float = 0.15
    seed: int = 0
    units: int = 256
    dropout: float = 0.2
    chunk: int = 128
    patience: int = 5
    strategy: str = "default"
    cpu_devices: int = 1

    def check(self) -> "TrainSettings":
        limits = {"epochs": (1, 10_000), "batch_size": (1, 65_536), "units": (1, 4096),
                  "chunk": (2, 100_000), "patience": (1, 1000), "cpu_devices": (1, 64)}
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise SynthError(f"--{name.replace('_', '-')} {value} is out of range: "
                                 f"expected {low}-{high}")
        if not (0 < self.learning_rate <= 1) or not math.isfinite(self.learning_rate):
            raise SynthError(f"--learning-rate {self.learning_rate:g} is out of range: "
                             "expected above 0, up to 1")
        if not 0 <= self.val_fraction < 1:
            raise SynthError(f"--val-fraction {self.val_fraction:g} is out of range: "
                             "expected 0 or more, below 1")
        if not 0 <= self.dropout < 1:
            raise SynthError(f"dropout {self.dropout:g} is out of range: expected 0 up to 1")
        if self.strategy not in STRATEGIES:
            raise SynthError(f"--strategy {self.strategy!r} is unknown: expected one of "
                             f"{', '.join(STRATEGIES)}")
        return self


class Reporter(Protocol):
    """Where training reports progress (the CLI draws a rich progress bar)."""

    def start(self, epochs: int, batches: int) -> None: ...
    def batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None: ...
    def epoch(self, epoch: int, logs: dict[str, float]) -> None: ...


@dataclass
class TrainResult:
    held_out: Metrics
    baseline_bits: float
    baseline_order: int
    held_out_songs: list[str]
    epochs_run: int
    best_epoch: int
    evaluated_on: str  # "held-out songs" or "training songs" when too few to hold out
    manifest: dict[str, Any] = field(default_factory=dict)


def chunks(songs: Sequence[Sequence[int]], length: int) -> tuple[np.ndarray, ...]:
    """Teacher-forcing arrays: inputs, targets and weights (0 on padding), `length` steps each.

    Each song is cut into consecutive chunks, so one pass reads each token once.
    """
    xs, ys, ws = [], [], []
    for song in songs:
        song = list(song)
        for start in range(0, len(song) - 1, length):
            x = song[start : start + length]
            y = song[start + 1 : start + length + 1]
            x = x[: len(y)]
            pad = length - len(y)
            xs.append(x + [REST] * pad)
            ys.append(y + [REST] * pad)
            ws.append([1.0] * len(y) + [0.0] * pad)
    if not xs:
        raise SynthError("the songs are too short to learn from: each needs at least 2 tokens")
    return (np.array(xs, dtype=np.int32), np.array(ys, dtype=np.int32),
            np.array(ws, dtype=np.float32))


def whole_batches(arrays: tuple[np.ndarray, ...], batch_size: int) -> tuple[np.ndarray, ...]:
    """Pad with weight-0 chunks to a whole number of batches, so that distribution strategies
    can split every batch evenly across replicas (they fail on a ragged last batch)."""
    x, y, w = arrays
    missing = -len(x) % batch_size
    if not missing:
        return arrays
    pad = np.zeros((missing, x.shape[1]), dtype=x.dtype)
    return (np.concatenate([x, pad]), np.concatenate([y, pad]),
            np.concatenate([w, pad.astype(w.dtype)]))


def split_songs(songs: Sequence[Song], fraction: float, seed: int) -> tuple[list[Song], list[Song]]:
    """(training songs, held-out songs), whole songs only, chosen by `seed`."""
    if len(songs) < MIN_SONGS_TO_HOLD_OUT or fraction == 0:
        return list(songs), []
    count = min(max(1, round(fraction * len(songs))), len(songs) - 1)
    order = np.random.default_rng(seed).permutation(len(songs))
    held = set(order[:count].tolist())
    return ([s for i, s in enumerate(songs) if i not in held],
            [s for i, s in enumerate(songs) if i in held])


def data_digest(songs: Sequence[Song]) -> str:
    digest = hashlib.sha256()
    for song in songs:
        digest.update(" ".join(map(str, song.tokens)).encode() + b"\n")
    return digest.hexdigest()


def _tensorflow(cpu_devices: int = 1):
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
    tf = _tensorflow()
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


def build_keras_model(units: int = 256, dropout: float = 0.2, learning_rate: float = 3e-3):
    """The Keras model of SPEC section 5, compiled for teacher forcing with padding weights."""
    import keras
    from keras import layers

    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    one_hot = layers.Lambda(lambda t: keras.ops.one_hot(t, NUM_CLASSES), name="one_hot")(tokens)
    hidden = layers.LSTM(units, return_sequences=True, name="lstm")(one_hot)
    hidden = layers.Dropout(dropout, name="dropout")(hidden)
    probs = layers.Dense(NUM_CLASSES, activation="softmax", name="dense")(hidden)
    model = keras.Model(tokens, probs, name="synth_melody")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  # Padding has weight 0: average over real notes only, so the loss shown is
                  # the true nats per note.
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      reduction="mean_with_sample_weight"),
                  weighted_metrics=["accuracy"])
    return model


def keras_weights(model) -> dict[str, np.ndarray]:
    """The Keras model's weights under the names of the model folder."""
    kernel, recurrent, bias = model.get_layer("lstm").get_weights()
    dense_kernel, dense_bias = model.get_layer("dense").get_weights()
    return {"lstm_kernel": kernel, "lstm_recurrent_kernel": recurrent, "lstm_bias": bias,
            "dense_kernel": dense_kernel, "dense_bias": dense_bias}


def set_keras_weights(model, weights: dict[str, np.ndarray]) -> None:
    model.get_layer("lstm").set_weights([weights["lstm_kernel"], weights["lstm_recurrent_kernel"],
                                         weights["lstm_bias"]])
    model.get_layer("dense").set_weights([weights["dense_kernel"], weights["dense_bias"]])


def _callback(reporter: Reporter | None):
    import keras

    class Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if reporter:
                reporter.batch(self._epoch, batch, {k: float(v) for k, v in (logs or {}).items()})

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            if reporter:
                reporter.epoch(epoch, {k: float(v) for k, v in (logs or {}).items()})

    return Progress()


def train(songs: Sequence[Song], out: Path, settings: TrainSettings,
          reporter: Reporter | None = None) -> TrainResult:
    """Train on songs and write the model folder atomically; the old model survives a failure."""
    settings.check()
    songs = [s for s in songs if len(s.tokens) > 1]
    if not songs:
        raise SynthError("the dataset has no song of 2 tokens or more: nothing to learn from")
    train_songs, held_songs = split_songs(songs, settings.val_fraction, settings.seed)
    train_tokens = [t for s in train_songs for t in transpositions(s.tokens)]
    x, y, w = whole_batches(chunks(train_tokens, settings.chunk), settings.batch_size)
    validation = whole_batches(chunks([s.tokens for s in held_songs], settings.chunk),
                               settings.batch_size) if held_songs else None

    tf = _tensorflow(settings.cpu_devices)
    import keras

    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(settings.strategy)
    with strategy.scope():
        net = build_keras_model(settings.units, settings.dropout, settings.learning_rate)
    monitor = "val_loss" if validation else "loss"
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=settings.patience,
                                            restore_best_weights=True)
    batches = math.ceil(len(x) / settings.batch_size)
    if reporter:
        reporter.start(settings.epochs, batches)
    history = net.fit(x, y, sample_weight=w, batch_size=settings.batch_size,
                      epochs=settings.epochs, shuffle=True, verbose=0,
                      validation_data=validation, callbacks=[stopper, _callback(reporter)])
    losses = history.history[monitor]
    best_epoch = int(np.argmin(losses)) + 1

    weights = keras_weights(net)
    first = np.bincount([s.tokens[0] for s in train_songs], minlength=NUM_CLASSES) + 0.0
    trained = Model(weights=weights, manifest={"start_probs": (first / first.sum()).tolist()})
    eval_songs = held_songs or train_songs
    scores = metrics_of(trained, [s.tokens for s in eval_songs])
    baseline, baseline_bits = best_baseline(train_tokens, [s.tokens for s in eval_songs])
    result = TrainResult(held_out=scores, baseline_bits=baseline_bits,
                         baseline_order=baseline.order,
                         held_out_songs=[s.name for s in held_songs],
                         epochs_run=len(losses), best_epoch=best_epoch,
                         evaluated_on="held-out songs" if held_songs else "training songs")
    result.manifest = {
        "vocabulary": {"classes": NUM_CLASSES, "rest": REST, "lowest_midi": 48,
                       "names": [class_name(t) for t in range(NUM_CLASSES)]},
        "architecture": {"input": "one-hot", "lstm_units": settings.units,
                         "dropout": settings.dropout, "output": "dense softmax",
                         "gates": "keras order i, f, c, o; sigmoid recurrent activation"},
        "training": {"data_digest": data_digest(songs), "songs": len(songs),
                     "training_songs": len(train_songs), "held_out_songs": result.held_out_songs,
                     "training_tokens_augmented": int(w.sum()), "epochs_run": len(losses),
                     "best_epoch": best_epoch, "settings": asdict(settings),
                     "augmentation": "every transposition inside C3-B4",
                     "trained_at": datetime.datetime.now(datetime.UTC).isoformat(
                         timespec="seconds")},
        "metrics": {"evaluated_on": result.evaluated_on, "loss": scores.loss,
                    "accuracy": scores.accuracy, "bits_per_note": scores.bits_per_note,
                    "notes": scores.notes, "baseline": "interpolated Kneser-Ney n-gram",
                    "baseline_order": baseline.order, "baseline_bits_per_note": baseline_bits},
        "start_probs": trained.manifest["start_probs"],
    }
    if _is_chief(settings.strategy):
        save_model(out, weights, result.manifest)
    return result


def _is_chief(strategy: str) -> bool:
    """In a multi-worker cluster only worker 0 writes the model."""
    if strategy != "multiworker":
        return True
    import json

    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type", "worker") in ("chief", "worker") and task.get("index", 0) == 0
