"""The Keras model and its training: the only module that imports TensorFlow (SPEC section 5).

events -> class one-hot beside length one-hot -> LSTM(256) -> Dropout(0.2) -> two softmax
heads: Dense(25) for the next event's class, and Dense(32) for its length, which reads the
hidden state beside the next class's one-hot (in training the true next class: teacher
forcing). The loss is the sum of the two cross-entropies, over whole songs cut into chunks,
every in-range transposition of each training song (lengths unchanged), held-out songs chosen
by seed, early stopping on held-out loss with the best weights kept.
Nothing on the compose or live path imports this module.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from synth.errors import SynthError
from synth.evaluation import Baselines, Metrics, baselines, metrics_of
from synth.events import NUM_LENGTHS, Event, encode, format_length
from synth.generate import check_seed
from synth.modelfile import Model, save_model
from synth.notes import NUM_CLASSES, REST, class_name
from synth.ppm import LongTerm, Memory, manifest_entry
from synth.songs import Song, transpositions

STRATEGIES = ("default", "mirrored", "multiworker")
MIN_SONGS_TO_HOLD_OUT = 5
MAX_MINUTES = 7 * 24 * 60


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
    chunk: int = 64  # events per training sequence (see the README: measured against 128)
    patience: int = 5
    strategy: str = "default"
    cpu_devices: int = 1
    max_minutes: float | None = None  # stop at the best epoch so far once this time is up

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
        check_seed(self.seed)
        if self.strategy not in STRATEGIES:
            raise SynthError(f"--strategy {self.strategy!r} is unknown: expected one of "
                             f"{', '.join(STRATEGIES)}")
        if self.max_minutes is not None and not 0 < self.max_minutes <= MAX_MINUTES:
            raise SynthError(f"--max-minutes {self.max_minutes:g} is out of range: expected "
                             f"above 0, up to {MAX_MINUTES} (a week)")
        return self


class Reporter(Protocol):
    """Where training reports progress (the CLI draws a rich progress bar)."""

    def start(self, epochs: int, batches: int) -> None: ...
    def batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None: ...
    def epoch(self, epoch: int, logs: dict[str, float]) -> None: ...


@dataclass
class TrainResult:
    held_out: Metrics
    with_memory: Metrics | None  # the same songs scored with the PPM memory mixed in
    baselines: Baselines
    held_out_songs: list[str]
    epochs_run: int
    best_epoch: int
    stopped_by: str  # "early stopping", "the time limit" or "the last epoch"
    evaluated_on: str  # "held-out songs" or "training songs" when too few to hold out
    manifest: dict[str, Any] = field(default_factory=dict)


def chunks(songs: Sequence[Sequence[Event]], length: int,
           weights: Sequence[float] | None = None) -> tuple[np.ndarray, ...]:
    """Teacher-forcing arrays, `length` events each: input classes, input lengths, next
    classes (the targets, which the length head also reads), next lengths, and weights (each
    song's weight, 1 unless given; 0 on padding). Each song is cut into consecutive chunks, so
    one pass reads each event once."""
    rows: list[list[np.ndarray]] = [[], [], [], [], []]
    for index, song in enumerate(songs):
        cls, lengths = encode(song)
        weight = 1.0 if weights is None else weights[index]
        for start in range(0, len(song) - 1, length):
            stop = min(start + length, len(song) - 1)
            pad = length - (stop - start)
            for row, part in zip(rows, (cls[start:stop], lengths[start:stop],
                                        cls[start + 1 : stop + 1], lengths[start + 1 : stop + 1],
                                        np.full(stop - start, weight, dtype=np.float32))):
                row.append(np.pad(part, (0, pad)))
    if not rows[0]:
        raise SynthError("the songs are too short to learn from: each needs at least 2 events")
    return tuple(np.array(row, dtype=np.float32 if i == 4 else np.int32)
                 for i, row in enumerate(rows))


def whole_batches(arrays: tuple[np.ndarray, ...], batch_size: int) -> tuple[np.ndarray, ...]:
    """Pad with weight-0 chunks to a whole number of batches, so that distribution strategies
    can split every batch evenly across replicas (they fail on a ragged last batch)."""
    missing = -len(arrays[0]) % batch_size
    if not missing:
        return arrays
    return tuple(np.concatenate([a, np.zeros((missing, *a.shape[1:]), dtype=a.dtype)])
                 for a in arrays)


def keras_data(arrays: tuple[np.ndarray, ...]) -> tuple[dict, dict, dict]:
    """(inputs, targets, sample weights) as the Keras model names them."""
    cls, lengths, next_cls, next_lengths, weights = arrays
    return ({"classes": cls, "lengths": lengths, "next_classes": next_cls},
            {"class": next_cls, "length": next_lengths},
            {"class": weights, "length": weights})


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
        digest.update(" ".join(f"{e.cls}:{format_length(e.quarters)}"
                               for e in song.events).encode() + b"\n")
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

    classes = keras.Input(shape=(None,), dtype="int32", name="classes")
    lengths = keras.Input(shape=(None,), dtype="int32", name="lengths")
    next_classes = keras.Input(shape=(None,), dtype="int32", name="next_classes")
    event = layers.Lambda(lambda pair: keras.ops.concatenate(
        [keras.ops.one_hot(pair[0], NUM_CLASSES), keras.ops.one_hot(pair[1], NUM_LENGTHS)],
        axis=-1), name="one_hot")([classes, lengths])
    hidden = layers.LSTM(units, return_sequences=True, name="lstm")(event)
    hidden = layers.Dropout(dropout, name="dropout")(hidden)
    class_probs = layers.Dense(NUM_CLASSES, activation="softmax", name="dense")(hidden)
    with_class = layers.Lambda(lambda pair: keras.ops.concatenate(
        [pair[0], keras.ops.one_hot(pair[1], NUM_CLASSES)], axis=-1),
        name="hidden_and_class")([hidden, next_classes])
    length_probs = layers.Dense(NUM_LENGTHS, activation="softmax", name="length")(with_class)
    model = keras.Model([classes, lengths, next_classes],
                        {"class": class_probs, "length": length_probs}, name="synth_melody")

    def loss():
        # Padding has weight 0: average over real events only, so the loss shown is the true
        # nats per event.
        return keras.losses.SparseCategoricalCrossentropy(reduction="mean_with_sample_weight")

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={"class": loss(), "length": loss()},
                  weighted_metrics={"class": ["accuracy"], "length": ["accuracy"]})
    return model


def keras_weights(model) -> dict[str, np.ndarray]:
    """The Keras model's weights under the names of the model folder."""
    kernel, recurrent, bias = model.get_layer("lstm").get_weights()
    dense_kernel, dense_bias = model.get_layer("dense").get_weights()
    length_kernel, length_bias = model.get_layer("length").get_weights()
    return {"lstm_kernel": kernel, "lstm_recurrent_kernel": recurrent, "lstm_bias": bias,
            "dense_kernel": dense_kernel, "dense_bias": dense_bias,
            "length_kernel": length_kernel, "length_bias": length_bias}


def set_keras_weights(model, weights: dict[str, np.ndarray]) -> None:
    model.get_layer("lstm").set_weights([weights["lstm_kernel"], weights["lstm_recurrent_kernel"],
                                         weights["lstm_bias"]])
    model.get_layer("dense").set_weights([weights["dense_kernel"], weights["dense_bias"]])
    model.get_layer("length").set_weights([weights["length_kernel"], weights["length_bias"]])


def _callbacks(reporter: Reporter | None, max_minutes: float | None) -> list:
    """Progress for the reporter, and the time limit: training stops after the epoch in which
    the time ran out, or before an epoch that would not finish in time."""
    import keras

    class Progress(keras.callbacks.Callback):
        timed_out = False

        def on_train_begin(self, logs=None):
            self._began = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if reporter:
                reporter.batch(self._epoch, batch, {k: float(v) for k, v in (logs or {}).items()})

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch
            self._epoch_began = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            if reporter:
                reporter.epoch(epoch, {k: float(v) for k, v in (logs or {}).items()})
            if max_minutes is not None:
                now = time.monotonic()
                if now + (now - self._epoch_began) - self._began > max_minutes * 60:
                    self.timed_out = True
                    self.model.stop_training = True

    return [Progress()]


def augment(songs: Sequence[Song]) -> tuple[list[list[Event]], list[float]]:
    """Every in-range transposition of every song, and a weight for each copy so that every
    song counts as much as its own events, however many transpositions its range allows (a
    narrow chorale has more than a wide fiddle tune; unweighted, the model would learn that
    chorales are commoner than they are). The weights average 1 over the events."""
    copies: list[list[Event]] = []
    shares: list[float] = []
    for song in songs:
        shifted = transpositions(song.events)
        copies.extend(shifted)
        shares.extend([1.0 / len(shifted)] * len(shifted))
    events = np.array([len(c) for c in copies], dtype=np.float64)
    scale = events.sum() / (events * shares).sum()
    return copies, [share * scale for share in shares]


def opening(songs: Sequence[Song]) -> tuple[list[float], list[list[float]]]:
    """How training songs open: the first class, and the first length given that class (each
    row smoothed towards all first lengths, so a class no song opens with still has one)."""
    first = np.bincount([s.events[0].cls for s in songs], minlength=NUM_CLASSES) + 0.0
    lengths = np.zeros((NUM_CLASSES, NUM_LENGTHS))
    for song in songs:
        lengths[song.events[0].cls, song.events[0].quarters - 1] += 1
    prior = lengths.sum(axis=0) / lengths.sum()
    lengths += prior
    return ((first / first.sum()).tolist(),
            (lengths / lengths.sum(axis=1, keepdims=True)).round(6).tolist())


def train(songs: Sequence[Song], out: Path, settings: TrainSettings,
          reporter: Reporter | None = None) -> TrainResult:
    """Train on songs and write the model folder atomically; the old model survives a failure."""
    settings.check()
    songs = [s for s in songs if len(s.events) > 1]
    if not songs:
        raise SynthError("the dataset has no song of 2 events or more: nothing to learn from")
    train_songs, held_songs = split_songs(songs, settings.val_fraction, settings.seed)
    augmented, weights = augment(train_songs)
    data = whole_batches(chunks(augmented, settings.chunk, weights), settings.batch_size)
    validation = keras_data(whole_batches(chunks([s.events for s in held_songs], settings.chunk),
                                          settings.batch_size)) if held_songs else None

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
    batches = math.ceil(len(data[0]) / settings.batch_size)
    if reporter:
        reporter.start(settings.epochs, batches)
    x, y, w = keras_data(data)
    progress = _callbacks(reporter, settings.max_minutes)
    history = net.fit(x, y, sample_weight=w, batch_size=settings.batch_size,
                      epochs=settings.epochs, shuffle=True, verbose=0,
                      validation_data=validation, callbacks=[stopper, *progress])
    losses = history.history[monitor]
    best_epoch = int(np.argmin(losses)) + 1
    stopped_by = ("the time limit" if progress[0].timed_out else
                  "early stopping" if stopper.stopped_epoch > 0 else "the last epoch")

    weights = keras_weights(net)
    long_term = LongTerm.fit([s.events for s in train_songs])  # the memory's long-term part
    start_probs, start_lengths = opening(train_songs)
    trained = Model(weights=weights, manifest={"start_probs": start_probs,
                                               "start_lengths": start_lengths})
    eval_songs = [s.events for s in (held_songs or train_songs)]
    scores = metrics_of(trained, eval_songs)
    with_memory = metrics_of(trained, eval_songs, Memory(long_term))
    compared = baselines(augmented, eval_songs)
    result = TrainResult(held_out=scores, with_memory=with_memory, baselines=compared,
                         held_out_songs=[s.name for s in held_songs],
                         epochs_run=len(losses), best_epoch=best_epoch, stopped_by=stopped_by,
                         evaluated_on="held-out songs" if held_songs else "training songs")
    result.manifest = {
        "vocabulary": {"classes": NUM_CLASSES, "rest": REST, "lowest_midi": 48,
                       "names": [class_name(t) for t in range(NUM_CLASSES)],
                       "lengths": NUM_LENGTHS, "length_unit": "quarter beat",
                       "length_class": "quarter beats - 1 (0 = 1/4 beat ... 31 = 8 beats)"},
        "architecture": {"input": "class one-hot (25) beside length one-hot (32)",
                         "lstm_units": settings.units, "dropout": settings.dropout,
                         "output": "dense softmax over classes; dense softmax over lengths "
                                   "reading the hidden state beside the next class one-hot",
                         "gates": "keras order i, f, c, o; sigmoid recurrent activation"},
        "training": {"data_digest": data_digest(songs), "songs": len(songs),
                     "training_songs": len(train_songs), "held_out_songs": result.held_out_songs,
                     "training_events_augmented": int(data[4].sum()), "epochs_run": len(losses),
                     "stopped_by": stopped_by,
                     "best_epoch": best_epoch, "settings": asdict(settings),
                     "loss": "class cross-entropy + length cross-entropy",
                     "augmentation": "every transposition inside C3-B4, lengths unchanged; "
                                     "each song weighted as its own events",
                     "trained_at": datetime.datetime.now(datetime.UTC).isoformat(
                         timespec="seconds")},
        "metrics": {"evaluated_on": result.evaluated_on, **asdict(scores),
                    "with_memory": asdict(with_memory),
                    "baselines": asdict(compared)},
        "memory": manifest_entry(long_term),
        "start_probs": start_probs,
        "start_lengths": start_lengths,
    }
    if _is_chief(settings.strategy):
        save_model(out, weights, result.manifest, long_term.arrays())
    return result


def _is_chief(strategy: str) -> bool:
    """In a multi-worker cluster only worker 0 writes the model."""
    if strategy != "multiworker":
        return True
    import json

    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type", "worker") in ("chief", "worker") and task.get("index", 0) == 0
