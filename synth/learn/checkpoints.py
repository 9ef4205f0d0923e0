"""Resuming a killed training (issue 15): the checkpoint folder beside the model, its state.json, and the callbacks that write it after each epoch and put it back on a resume."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np

from synth import files
from synth.learn.runtime import worker_index

CHECKPOINT_VERSION = 1
STATE = "state.json"


def checkpoint_folder(out: Path) -> Path:
    """Where training keeps the last finished epoch: beside the model folder, never in it."""
    out = Path(out)
    worker = worker_index()
    suffix = f".worker-{worker}" if worker else ""
    return out.parent / f".{out.name}.checkpoint{suffix}"


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _epoch_of(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_checkpoint(folder: Path, identity: dict) -> tuple[dict | None, str | None]:
    """(the saved state to resume, None) or (None, why the checkpoint cannot be resumed).

    The state is written after Keras's BackupAndRestore files, and names their digest; if a
    kill fell between the two writes, the copy Keras kept of the epoch before (its double
    checkpoint) is the one the state names, and is put back in place."""
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


def checkpoint_callback(folder: Path, identity: dict, stopper, progress, epochs: int,
                        history: list[dict], best_file: str | None):
    """After each epoch, once Keras's BackupAndRestore has saved weights and optimizer:
    early stopping's state, the best weights, the history and the time spent, written
    atomically into the checkpoint, so that a resumed run stops where this one would."""
    import keras

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
    """Dropout's random state: kept in the checkpoint, so a resumed run draws the same."""
    return model.get_layer("dropout").seed_generator.state


def resume_callback(stopper, state: dict, folder: Path):
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
