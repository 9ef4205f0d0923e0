"""Training the model (SPEC section 5): the settings, the loop and what it reports and writes.

The network (synth.learn.network) learns by teacher forcing the sum of its two cross-entropies
over whole songs cut into chunks, every in-range transposition of each training song (lengths
unchanged, synth.learn.batches), held-out songs chosen by seed, early stopping on held-out loss
with the best weights kept, and each finished epoch kept in a checkpoint so that a killed
training resumes where it was (synth.learn.checkpoints). Then the memory's tables and gate are
fitted, the model scored beside the baselines, and the model folder written atomically.
TensorFlow is imported only inside the functions (synth.learn.runtime), so the CLI can import
TrainSettings for free; nothing on the compose or live path imports this module.
"""

from __future__ import annotations

import datetime
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from synth.errors import SynthError
from synth.learn.batches import corpus, data_digest, opening, pipeline, split_songs
from synth.learn.checkpoints import (CHECKPOINT_VERSION, checkpoint_callback, checkpoint_folder,
                                     load_checkpoint, resume_callback)
from synth.learn.evaluation import Baselines, Metrics, baselines, fit_gates, metrics_of
from synth.music.events import NUM_LENGTHS
from synth.learn.generate import check_seed
from synth.learn.model import Model, save_model
from synth.learn.network import build_keras_model, keras_weights
from synth.learn.runtime import STRATEGIES, is_chief, load_tensorflow, make_strategy
from synth.music.notes import NUM_CLASSES, REST, class_name
from synth.learn.gate import MixSettings, manifest_entry
from synth.learn.memory import Memory
from synth.learn.ppm import LongTerm
from synth.music.songs import Song

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


def learning_rate(settings: TrainSettings, batches: int):
    """Adam's learning rate: constant, or halving every `lr_half_life` epochs of `batches`
    steps (a schedule of the step count, which Keras checkpoints with the optimizer)."""
    if settings.lr_half_life is None:
        return settings.learning_rate
    import keras

    return keras.optimizers.schedules.ExponentialDecay(
        settings.learning_rate, decay_steps=settings.lr_half_life * batches, decay_rate=0.5)


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


def train(songs: Sequence[Song], out: Path, settings: TrainSettings,
          reporter: Reporter | None = None, restart: bool = False,
          quiet: bool = True) -> TrainResult:
    """Train on songs and write the model folder atomically; the old model survives a failure.

    Each finished epoch is kept in a checkpoint beside the model folder (checkpoint_folder),
    and the same call after a kill continues from it and says so; `restart` starts afresh.
    The checkpoint goes once the model folder is written. `quiet` hides TensorFlow's start-up
    chatter (`synth --debug` shows it)."""
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
        state, why = load_checkpoint(folder, identity)
        if state is None:
            _note(reporter, f"Starting afresh: the checkpoint in {folder} cannot be resumed: "
                            f"{why}.")
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _note(reporter, f"Resuming after epoch {state['epoch']} of {settings.epochs} from "
                            f"the checkpoint in {folder} (--restart starts afresh).")

    tf = load_tensorflow(settings.cpu_devices, quiet)
    import keras

    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(settings.strategy, quiet)
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
        callbacks.append(resume_callback(stopper, state, folder))
    callbacks.append(checkpoint_callback(folder, identity, stopper, progress[0], settings.epochs,
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
    result.written = is_chief(settings.strategy)
    if result.written:
        save_model(out, weights, result.manifest, long_term.arrays())
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _note(reporter: Reporter | None, text: str) -> None:
    say = getattr(reporter, "note", None)
    if say:
        say(text)
