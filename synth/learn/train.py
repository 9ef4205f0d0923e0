"""The Keras model and its training: the only module that imports TensorFlow (SPEC section 5).

events -> class one-hot beside length one-hot -> LSTM(256) -> Dropout(0.2) -> two softmax
heads: Dense(25) for the next event's class, and Dense(32) for its length, which reads the
hidden state beside the next class's one-hot (in training the true next class: teacher
forcing). The loss is the sum of the two cross-entropies, over whole songs cut into chunks,
every in-range transposition of each training song (lengths unchanged), held-out songs chosen
by seed, early stopping on held-out loss with the best weights kept.
The chunks stream through a tf.data pipeline that transposes and cuts each song as it is read
(memory holds each song once), and every finished epoch is kept in a checkpoint beside the
model folder (Keras's BackupAndRestore plus early stopping's state), so that a killed training
resumes where it was. Nothing on the compose or live path imports this module.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from synth.errors import SynthError
from synth.learn.evaluation import Baselines, Metrics, baselines, fit_gates, metrics_of
from synth.music.events import NUM_LENGTHS, Event, encode, format_length
from synth.learn.generate import check_seed
from synth.learn.model import Model, save_model
from synth.music.notes import NUM_CLASSES, REST, class_name
from synth.learn.gate import MixSettings, manifest_entry
from synth.learn.memory import Memory
from synth.learn.ppm import LongTerm
from synth.music.songs import Song, transposition_shifts

STRATEGIES = ("default", "mirrored", "multiworker")
MIN_SONGS_TO_HOLD_OUT = 5
MAX_MINUTES = 7 * 24 * 60


@dataclass
class TrainSettings:
    """Everything `synth train` can be told; the same settings and seed give the same model."""

    epochs: int = 40
    batch_size: int = 64  # measured on the benchmark (README): as good as 32 in 60 % of the time
    learning_rate: float = 3e-3
    # Epochs over which the learning rate halves, smoothly, step by step (None: constant).
    # A schedule of the optimizer's step count, so a resumed run follows it exactly.
    lr_half_life: float | None = None
    val_fraction: float = 0.15
    seed: int = 0
    units: int = 256
    dropout: float = 0.2
    chunk: int = 64  # events per training sequence (see the README: measured against 128)
    patience: int = 5
    strategy: str = "default"
    cpu_devices: int = 1
    max_minutes: float | None = None  # stop at the best epoch so far once this time is up
    # Whether the model composes with its PPM memory by default (the tables and the gate are
    # fitted and saved either way; `--no-memory` turns it off when composing).
    memory: bool = True

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
        if self.lr_half_life is not None and not (
                0 < self.lr_half_life <= 10_000 and math.isfinite(self.lr_half_life)):
            raise SynthError(f"--lr-half-life {self.lr_half_life:g} is out of range: "
                             "expected above 0, up to 10000 epochs")
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
    def note(self, text: str) -> None: ...  # one line to show the user (optional)


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
    written: bool = True  # False on a multi-worker cluster's other workers: the chief writes


@dataclass
class Corpus:
    """Songs encoded once, end to end, and the copies to train on: (song, shift, weight).

    The input pipeline transposes and cuts each copy into chunks as it goes, so memory holds
    the songs once, never every transposition of them (issue 12)."""

    classes: np.ndarray  # int32: every song's classes, one song after another
    lengths: np.ndarray  # int32: their length classes
    starts: np.ndarray  # int64: where each song begins, and the end of the last one
    song: np.ndarray  # int32 per copy: which song
    shift: np.ndarray  # int32 per copy: semitones up (0: as written)
    weight: np.ndarray  # float32 per copy: its events' weight

    def chunk_count(self, length: int) -> int:
        """How many `length`-event chunks one pass over the copies gives."""
        targets = np.diff(self.starts)[self.song] - 1
        return int((-(-targets // length)).sum())

    def weighted_events(self) -> float:
        return float(((np.diff(self.starts)[self.song] - 1) * self.weight).sum())

    def copies(self) -> "Transposed":
        return Transposed(self)


class Transposed(Sequence):
    """The corpus's copies as event lists, made one at a time when asked for."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus

    def __len__(self) -> int:
        return len(self.corpus.song)

    def __getitem__(self, index):
        c = self.corpus
        song, shift = int(c.song[index]), int(c.shift[index])
        begin, end = int(c.starts[song]), int(c.starts[song + 1])
        return [Event(int(k) + shift if k != REST else REST, int(q) + 1)
                for k, q in zip(c.classes[begin:end], c.lengths[begin:end])]


def corpus(songs: Sequence[Song], augment: bool) -> Corpus:
    """Encode songs; with `augment`, one copy per in-range transposition of each song (lengths
    unchanged), weighted so that every song counts as much as its own events however many
    transpositions its range allows (a narrow chorale has more than a wide fiddle tune;
    unweighted, the model would learn that chorales are commoner than they are). The weights
    average 1 over the events."""
    encoded = [encode(s.events if isinstance(s, Song) else s) for s in songs]
    sizes = np.array([len(cls) for cls, _ in encoded], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    song_of, shift_of, share = [], [], []
    for index, (cls, _) in enumerate(encoded):
        shifts = transposition_shifts(cls.tolist()) if augment else range(1)
        song_of.extend([index] * len(shifts))
        shift_of.extend(shifts)
        share.extend([1.0 / len(shifts)] * len(shifts))
    song_of, share = np.array(song_of, dtype=np.int32), np.array(share)
    events = sizes[song_of].astype(np.float64)
    weight = share * events.sum() / (events * share).sum()
    return Corpus(classes=np.concatenate([cls for cls, _ in encoded]).astype(np.int32),
                  lengths=np.concatenate([q for _, q in encoded]).astype(np.int32),
                  starts=starts, song=song_of, shift=np.array(shift_of, dtype=np.int32),
                  weight=weight.astype(np.float32))


SHUFFLE_CHUNKS = 4096  # chunks mixed at once: the whole of a small dataset, 6 MB at most


def pipeline(data: Corpus, length: int, batch_size: int, epochs: range | None = None,
             seed: int = 0):
    """A tf.data pipeline of batches: inputs (batch, length, 3) = class, length class and next
    class (which the length head reads: teacher forcing); targets (batch, length, 2) = next
    class and next length class; weights (batch, length), 0 on padding. Each copy is
    transposed and cut into consecutive chunks as it is read, so one pass reads each event
    once. With `epochs` the copies and chunks are shuffled, seeded by the epoch (a resumed run
    sees what an uninterrupted one would); without, one pass in order (held-out songs). Each
    pass is padded with weight-0 chunks to whole batches, so that distribution strategies can
    split every batch evenly across replicas."""
    import tensorflow as tf

    classes, lengths = tf.constant(data.classes), tf.constant(data.lengths)
    starts = tf.constant(data.starts)
    missing = -data.chunk_count(length) % batch_size

    def cut(song, shift, weight):
        begin, end = starts[song], starts[song + 1]
        cls, lens = classes[begin:end], lengths[begin:end]
        cls = tf.where(cls == REST, cls, cls + shift)
        count = tf.cast(end - begin - 1, tf.int32)
        pad = -count % length

        def rows(values):
            return tf.reshape(tf.pad(values, [[0, pad]]), [-1, length])

        inputs = tf.stack([rows(cls[:-1]), rows(lens[:-1]), rows(cls[1:])], axis=-1)
        targets = tf.stack([rows(cls[1:]), rows(lens[1:])], axis=-1)
        return tf.data.Dataset.from_tensor_slices((inputs, targets,
                                                   rows(tf.fill([count], weight))))

    padding = tf.data.Dataset.from_tensors(
        (tf.zeros([length, 3], tf.int32), tf.zeros([length, 2], tf.int32),
         tf.zeros([length], tf.float32))).repeat(missing)
    copies = tf.data.Dataset.from_tensor_slices((data.song, data.shift, data.weight))

    def one_pass(epoch=None):
        ds = copies
        if epoch is not None:
            ds = ds.shuffle(len(data.song), seed=seed * 100_003 + epoch)
        ds = ds.flat_map(cut)
        if epoch is not None:
            ds = ds.shuffle(SHUFFLE_CHUNKS, seed=seed * 100_003 + epoch + 50_000)
        return ds.concatenate(padding).batch(batch_size, drop_remainder=True)

    if epochs is None:
        ds = one_pass()
    else:  # one pass per epoch, each shuffled by its own seed
        ds = one_pass(epochs.start) if epochs else one_pass().take(0)
        for epoch in epochs[1:]:
            ds = ds.concatenate(one_pass(epoch))
    batches = (data.chunk_count(length) + missing) // batch_size * (len(epochs) if epochs is not None else 1)
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))  # Keras needs the count
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return ds.with_options(options).prefetch(2)


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


def _model_class():
    import keras

    import tensorflow as tf

    def multiworker(strategy) -> bool:
        return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)

    class Network(keras.Model):
        """keras.Model with two fixes for MultiWorkerMirroredStrategy in Keras 3.15, which
        otherwise fails before the first step: it builds the model by reducing the whole
        first distributed batch (a tuple) with strategy.reduce ("Attempt to convert a value
        (PerReplica...)"), and it averages each step's scalar logs over axis 0 ("Invalid
        reduction dimension 0 for input with 0 dimensions"). Here the model is built from
        this worker's part of the batch, and the logs are averaged over the replicas."""

        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            strategy = self._distribute_strategy
            if not multiworker(strategy) or iterator is None:
                return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
            for _, _, it in iterator:
                batch = next(it)
                break
            local = [strategy.experimental_local_results(v)[0] for v in batch]
            with strategy.scope():
                self._symbolic_build(data_batch=tuple(local))

        def _make_function(self, step_function):
            strategy = self._distribute_strategy
            if not multiworker(strategy):
                return super()._make_function(step_function)

            @tf.function(reduce_retracing=True)
            def one_step(iterator):
                logs = strategy.run(step_function, args=(iterator.get_next(),))
                return {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}

            return one_step

    return Network


def build_keras_model(units: int = 256, dropout: float = 0.2, learning_rate=3e-3):
    """The Keras model of SPEC section 5, compiled for teacher forcing with padding weights.

    One input (class, length class, next class per step) and one output (the class softmax
    beside the length softmax, 25 + 32 per step), so that multi-worker training reduces plain
    tensors, not dicts; the layers are those the NumPy model loads."""
    import keras
    from keras import layers

    steps = keras.Input(shape=(None, 3), dtype="int32", name="events")
    event = layers.Lambda(lambda x: keras.ops.concatenate(
        [keras.ops.one_hot(x[..., 0], NUM_CLASSES), keras.ops.one_hot(x[..., 1], NUM_LENGTHS)],
        axis=-1), name="one_hot")(steps)
    hidden = layers.LSTM(units, return_sequences=True, name="lstm")(event)
    hidden = layers.Dropout(dropout, name="dropout")(hidden)
    class_probs = layers.Dense(NUM_CLASSES, activation="softmax", name="dense")(hidden)
    with_class = layers.Lambda(lambda pair: keras.ops.concatenate(
        [pair[0], keras.ops.one_hot(pair[1][..., 2], NUM_CLASSES)], axis=-1),
        name="hidden_and_class")([hidden, steps])
    length_probs = layers.Dense(NUM_LENGTHS, activation="softmax", name="length")(with_class)
    probs = layers.Concatenate(name="probs")([class_probs, length_probs])
    model = _model_class()(steps, probs, name="synth_melody")

    class JointLoss(keras.losses.Loss):
        """Class cross-entropy + length cross-entropy, per event."""

        def call(self, targets, probs):
            targets = keras.ops.cast(targets, "int32")
            return (keras.losses.sparse_categorical_crossentropy(
                        targets[..., 0], probs[..., :NUM_CLASSES]) +
                    keras.losses.sparse_categorical_crossentropy(
                        targets[..., 1], probs[..., NUM_CLASSES:]))

    # Padding has weight 0: average over real events only, so the loss shown is the true
    # nats per event (class + length).
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=JointLoss(reduction="mean_with_sample_weight", name="joint"))
    return model


def learning_rate(settings: TrainSettings, batches: int):
    """Adam's learning rate: constant, or halving every `lr_half_life` epochs of `batches`
    steps (a schedule of the step count, which Keras checkpoints with the optimizer)."""
    if settings.lr_half_life is None:
        return settings.learning_rate
    import keras

    return keras.optimizers.schedules.ExponentialDecay(
        settings.learning_rate, decay_steps=settings.lr_half_life * batches, decay_rate=0.5)


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


def _callbacks(reporter: Reporter | None, max_minutes: float | None,
               spent: float = 0.0) -> list:
    """Progress for the reporter, and the time limit: training stops after the epoch in which
    the time ran out, or before an epoch that would not finish in time. `spent` is the
    training time of the run this one resumes: the limit counts it too."""
    import keras

    class Progress(keras.callbacks.Callback):
        timed_out = False

        def on_train_begin(self, logs=None):
            self._began = time.monotonic() - spent

        def elapsed(self) -> float:
            return time.monotonic() - self._began

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


# --- resuming after a kill (issue 15) ---------------------------------------------------------

CHECKPOINT_VERSION = 1
STATE = "state.json"


def checkpoint_folder(out: Path) -> Path:
    """Where training keeps the last finished epoch: beside the model folder, never in it."""
    out = Path(out)
    worker = _worker_index()
    suffix = f".worker-{worker}" if worker else ""
    return out.parent / f".{out.name}.checkpoint{suffix}"


def _worker_index() -> int:
    import json

    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task", {})
    return 0 if task.get("type", "worker") == "chief" else int(task.get("index", 0))


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _epoch_of(path: Path) -> int | None:
    import json

    try:
        return int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_checkpoint(folder: Path, identity: dict) -> tuple[dict | None, str | None]:
    """(the saved state to resume, None) or (None, why the checkpoint cannot be resumed).

    The state is written after Keras's BackupAndRestore files, and names their digest; if a
    kill fell between the two writes, the copy Keras kept of the epoch before (its double
    checkpoint) is the one the state names, and is put back in place."""
    import json
    import shutil

    try:
        state = json.loads((folder / STATE).read_text())
        if not isinstance(state, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        return None, "it holds no finished epoch"
    except (OSError, ValueError) as exc:
        return None, f"it is unreadable ({exc})"
    if state.get("identity") != identity:
        return None, "it is from a different dataset or different settings"
    backup = folder / "keras"
    weights, metadata = backup / "latest.weights.h5", backup / "training_metadata.json"
    for w, m in ((weights, metadata), (Path(f"{weights}.bkp"), Path(f"{metadata}.bkp"))):
        if _sha256(w) == state.get("weights_sha256") and _epoch_of(m) == state.get("epoch"):
            if w != weights:
                shutil.copyfile(w, weights)
                shutil.copyfile(m, metadata)
            break
    else:
        return None, "its files do not agree (a write was cut off)"
    if state.get("best_weights") and not (folder / state["best_weights"]).is_file():
        return None, "its best weights are missing"
    return state, None


def _checkpointing(folder: Path, identity: dict, stopper, progress, epochs: int,
                   history: list[dict], best_file: str | None):
    """After each epoch, once Keras's BackupAndRestore has saved weights and optimizer:
    early stopping's state, the best weights, the history and the time spent, written
    atomically into the checkpoint, so that a resumed run stops where this one would."""
    import json

    import keras

    from synth import files

    class Checkpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best_file = best_file

        def on_epoch_end(self, epoch, logs=None):
            history.append({k: float(v) for k, v in (logs or {}).items()})
            if stopper.best_epoch == epoch or self.best_file is None:
                name = f"best-{epoch + 1}.npz"
                buffer = io.BytesIO()
                np.savez(buffer, *self.model.get_weights())
                files.write_bytes(folder / name, buffer.getvalue())
                old, self.best_file = self.best_file, name
            else:
                old = None
            stopped_by = None
            if progress.timed_out:
                stopped_by = "the time limit"
            elif stopper.stopped_epoch > 0:
                stopped_by = "early stopping"
            elif epoch + 1 >= epochs:
                stopped_by = "the last epoch"
            state = {"version": CHECKPOINT_VERSION, "identity": identity, "epoch": epoch + 1,
                     "weights_sha256": _sha256(folder / "keras" / "latest.weights.h5"),
                     "history": history, "spent": progress.elapsed(),
                     "stopper": {"best": None if stopper.best is None else float(stopper.best),
                                 "best_epoch": int(stopper.best_epoch),
                                 "wait": int(stopper.wait)},
                     "best_weights": self.best_file, "stopped_by": stopped_by,
                     "dropout_rng": _dropout_rng(self.model).numpy().tolist()}
            files.write_text(folder / STATE, json.dumps(state) + "\n")
            if old and old != self.best_file:
                (folder / old).unlink(missing_ok=True)

    return Checkpoint()


def _dropout_rng(model):
    return model.get_layer("dropout").seed_generator.state


def _resuming(stopper, state: dict, folder: Path):
    """Puts early stopping back as the checkpoint left it (Keras's BackupAndRestore restores
    only weights, optimizer and epoch); runs after EarlyStopping.on_train_begin resets it."""
    import keras

    class Resume(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            saved = state["stopper"]
            stopper.best, stopper.best_epoch, stopper.wait = (
                saved["best"], saved["best_epoch"], saved["wait"])
            # Dropout's random state too, so the resumed epochs draw what an uninterrupted
            # run would have drawn.
            _dropout_rng(self.model).assign(np.array(state["dropout_rng"], dtype="int64"))
            with np.load(folder / state["best_weights"], allow_pickle=False) as npz:
                stopper.best_weights = [npz[f"arr_{i}"] for i in range(len(npz.files))]

    return Resume()


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
          reporter: Reporter | None = None, restart: bool = False) -> TrainResult:
    """Train on songs and write the model folder atomically; the old model survives a failure.

    Each finished epoch is kept in a checkpoint beside the model folder (checkpoint_folder),
    and the same call after a kill continues from it and says so; `restart` starts afresh.
    The checkpoint goes once the model folder is written."""
    import shutil

    settings.check()
    songs = [s for s in songs if len(s.events) > 1]
    if not songs:
        raise SynthError("the dataset has no song of 2 events or more: nothing to learn from")
    train_songs, held_songs = split_songs(songs, settings.val_fraction, settings.seed)
    data = corpus(train_songs, augment=True)
    held = corpus(held_songs, augment=False) if held_songs else None
    identity = {"version": CHECKPOINT_VERSION, "data_digest": data_digest(songs),
                "settings": {k: v for k, v in asdict(settings).items()
                             if k not in ("max_minutes", "memory")}}
    folder = checkpoint_folder(out)
    state = None
    if restart:
        shutil.rmtree(folder, ignore_errors=True)
    elif folder.exists():
        state, why = _load_checkpoint(folder, identity)
        if state is None:
            _note(reporter, f"Starting afresh: the checkpoint in {folder} cannot be resumed: "
                            f"{why}.")
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _note(reporter, f"Resuming after epoch {state['epoch']} of {settings.epochs} from "
                            f"the checkpoint in {folder} (--restart starts afresh).")

    tf = _tensorflow(settings.cpu_devices)
    import keras

    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(settings.strategy)
    batches = -(-data.chunk_count(settings.chunk) // settings.batch_size)
    with strategy.scope():
        net = build_keras_model(settings.units, settings.dropout,
                                learning_rate(settings, batches))
    first = state["epoch"] if state else 0
    last = first if state and state["stopped_by"] else settings.epochs
    training = pipeline(data, settings.chunk, settings.batch_size, range(first, last),
                        settings.seed)
    validation = pipeline(held, settings.chunk, settings.batch_size) if held else None
    monitor = "val_loss" if validation else "loss"
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=settings.patience,
                                            restore_best_weights=True)
    progress = _callbacks(reporter, settings.max_minutes, state["spent"] if state else 0.0)
    history = list(state["history"]) if state else []
    callbacks = [keras.callbacks.BackupAndRestore(str(folder / "keras"), double_checkpoint=True,
                                                  delete_checkpoint=False),
                 stopper, *progress]
    if state:
        callbacks.append(_resuming(stopper, state, folder))
    callbacks.append(_checkpointing(folder, identity, stopper, progress[0], settings.epochs,
                                    history, state["best_weights"] if state else None))
    if reporter:
        reporter.start(settings.epochs, batches)
    net.fit(training, epochs=last, steps_per_epoch=batches, verbose=0, shuffle=False,
            validation_data=validation, callbacks=callbacks)
    losses = [h[monitor] for h in history]
    best_epoch = int(np.argmin(losses)) + 1
    stopped_by = (state["stopped_by"] if state and state["stopped_by"] else
                  "the time limit" if progress[0].timed_out else
                  "early stopping" if stopper.stopped_epoch > 0 else "the last epoch")

    weights = keras_weights(net)
    long_term = LongTerm.fit([s.events for s in train_songs])  # the memory's long-term part
    start_probs, start_lengths = opening(train_songs)
    trained = Model(weights=weights, manifest={"start_probs": start_probs,
                                               "start_lengths": start_lengths})
    eval_songs = [s.events for s in (held_songs or train_songs)]
    # The memory's gate, fitted on the held-out songs (without them, IDyOM's entropy weights).
    mixing = fit_gates(trained, long_term, eval_songs) if held_songs else MixSettings()
    memory_entry = manifest_entry(long_term, mixing, enabled=settings.memory)
    trained.manifest["memory"] = memory_entry
    scores = metrics_of(trained, eval_songs)
    with_memory = metrics_of(trained, eval_songs, Memory(long_term))
    compared = baselines(data.copies(), eval_songs)
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
                     "training_events_augmented": round(data.weighted_events()),
                     "epochs_run": len(losses), "stopped_by": stopped_by,
                     "best_epoch": best_epoch, "settings": asdict(settings),
                     "loss": "class cross-entropy + length cross-entropy",
                     "augmentation": "every transposition inside C3-B4, lengths unchanged; "
                                     "each song weighted as its own events",
                     "trained_at": datetime.datetime.now(datetime.UTC).isoformat(
                         timespec="seconds")},
        "metrics": {"evaluated_on": result.evaluated_on, **asdict(scores),
                    "with_memory": asdict(with_memory),
                    "baselines": asdict(compared)},
        "memory": memory_entry,
        "start_probs": start_probs,
        "start_lengths": start_lengths,
    }
    result.written = _is_chief(settings.strategy)
    if result.written:
        save_model(out, weights, result.manifest, long_term.arrays())
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _note(reporter: Reporter | None, text: str) -> None:
    say = getattr(reporter, "note", None)
    if say:
        say(text)


def _is_chief(strategy: str) -> bool:
    """In a multi-worker cluster only worker 0 (or the chief) writes the model."""
    return strategy != "multiworker" or _worker_index() == 0
