"""The model folder: NumPy weights (.npz, never pickled) plus a JSON manifest. NumPy only.

Format 2 (SPEC section 5) reads class and length and predicts both: the LSTM's input is the
class one-hot beside the length one-hot, and a length head sees the hidden state and the class
chosen. Format 1 models read and predict classes only; they still load, and compose with every
length one beat.

Saving is atomic and durable: the weights go to a content-named file first (synced to the disk),
then the manifest that names them replaces the old one in one rename, then stale weights are
removed. At every moment the manifest names a complete weights file, so an interrupted or
killed `synth train` leaves the old model; Ctrl-C or SIGTERM during the save also takes back
the weights it had added.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synth import files
from synth.learn import styles
from synth.errors import SynthError
from synth.music.events import INPUT_SIZE, NUM_LENGTHS
from synth.music.notes import NUM_CLASSES

FORMAT = "synth-model"
FORMAT_VERSION = 2  # what `synth train` writes
CLASSES_ONLY = 1  # the format before rhythm: still loaded
READABLE_VERSIONS = (CLASSES_ONLY, FORMAT_VERSION)
MANIFEST = styles.MANIFEST
WEIGHT_NAMES = ("lstm_kernel", "lstm_recurrent_kernel", "lstm_bias", "dense_kernel", "dense_bias")
LENGTH_WEIGHTS = ("length_kernel", "length_bias")
PACKAGED_MODEL = styles.PACKAGED_DEFAULT
HOW_TO_TRAIN = "train one with `synth train` or pass --model DIR"


@dataclass
class Model:
    """A trained melody model: one LSTM layer, a class softmax and (format 2) a length softmax."""

    weights: dict[str, np.ndarray]
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    memory_tables: dict[str, np.ndarray] | None = None  # the long-term PPM's counts (ppm.py)

    @property
    def units(self) -> int:
        return int(self.weights["lstm_recurrent_kernel"].shape[0])

    @property
    def has_lengths(self) -> bool:
        """Whether the model reads and predicts lengths (format 2), not classes only."""
        return "length_kernel" in self.weights

    @property
    def start_lengths(self) -> np.ndarray:
        """How long the first events of training songs are, per first class: (25, 32)."""
        probs = np.asarray(self.manifest.get("start_lengths", []), dtype=np.float64)
        if probs.shape != (NUM_CLASSES, NUM_LENGTHS) or not np.isfinite(probs).all() or \
                (probs < 0).any() or (probs.sum(axis=1) <= 0).any():
            probs = np.zeros((NUM_CLASSES, NUM_LENGTHS))
            probs[:, 3] = 1.0  # one beat
        return probs / probs.sum(axis=1, keepdims=True)

    @property
    def start_probs(self) -> np.ndarray:
        """How often each class opens a training song: the distribution of first notes."""
        probs = np.asarray(self.manifest.get("start_probs", []), dtype=np.float64)
        if probs.shape != (NUM_CLASSES,) or not np.isfinite(probs).all() or probs.sum() <= 0:
            probs = np.ones(NUM_CLASSES)
            probs[0] = 0.0
        return probs / probs.sum()


def check_weights(weights: dict[str, np.ndarray], where: str) -> None:
    """Shapes and values a one-layer LSTM over 25 classes (and 32 lengths) must have."""
    lengths = any(n in weights for n in LENGTH_WEIGHTS)
    names = WEIGHT_NAMES + (LENGTH_WEIGHTS if lengths else ())
    missing = [n for n in names if n not in weights]
    if missing:
        raise SynthError(f"{where}: weights {', '.join(missing)} are missing; {HOW_TO_TRAIN}")
    units = weights["lstm_recurrent_kernel"].shape[0] if weights["lstm_recurrent_kernel"].ndim else 0
    inputs = INPUT_SIZE if lengths else NUM_CLASSES
    expected = {"lstm_kernel": (inputs, 4 * units),
                "lstm_recurrent_kernel": (units, 4 * units), "lstm_bias": (4 * units,),
                "dense_kernel": (units, NUM_CLASSES), "dense_bias": (NUM_CLASSES,)}
    if lengths:
        expected.update({"length_kernel": (units + NUM_CLASSES, NUM_LENGTHS),
                         "length_bias": (NUM_LENGTHS,)})
    kind = f"a {NUM_CLASSES}-class, {NUM_LENGTHS}-length LSTM" if lengths else \
        f"a {NUM_CLASSES}-class LSTM"
    for name, shape in expected.items():
        array = weights[name]
        if units == 0 or array.shape != shape:
            raise SynthError(f"{where}: weight {name} has shape {array.shape}, expected {shape} "
                             f"({kind}); {HOW_TO_TRAIN}")
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            raise SynthError(f"{where}: weight {name} holds non-finite or non-float values; "
                             f"{HOW_TO_TRAIN}")


def save_model(folder: Path, weights: dict[str, np.ndarray], manifest: dict[str, Any],
               memory_tables: dict[str, np.ndarray] | None = None) -> Path:
    """Write a model folder atomically; returns the manifest's path. The long-term PPM's
    tables, if given, go to their own content-named file (plain arrays, never pickled)."""
    folder = Path(folder)
    check_weights(weights, str(folder))
    names = WEIGHT_NAMES + (LENGTH_WEIGHTS if "length_kernel" in weights else ())
    version = FORMAT_VERSION if "length_kernel" in weights else CLASSES_ONLY
    manifest = {**manifest, "format": FORMAT, "format_version": version}
    written: list[Path] = []  # files this save added, removed again if it does not finish
    try:
        with files.sigterm_as_ctrl_c():
            weights_name, digest = _save_arrays(
                folder, "weights", {n: np.asarray(weights[n], dtype=np.float32) for n in names},
                written)
            manifest["weights"] = {"file": weights_name, "sha256": digest}
            keep = {weights_name}
            if memory_tables is not None:
                tables_name, digest = _save_arrays(folder, "memory", memory_tables, written)
                manifest["memory"] = {**manifest.get("memory", {}),
                                      "tables": {"file": tables_name, "sha256": digest}}
                keep.add(tables_name)
            files.write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        for path in written:  # the old manifest names none of them
            path.unlink(missing_ok=True)
        raise
    for stale in [*folder.glob("weights-*.npz"), *folder.glob("memory-*.npz")]:
        if stale.name not in keep:
            stale.unlink(missing_ok=True)
    return folder / MANIFEST


def _save_arrays(folder: Path, kind: str, arrays: dict[str, np.ndarray],
                 written: list[Path]) -> tuple[str, str]:
    """Save arrays as folder/KIND-DIGEST.npz (plain arrays, never pickled), noting in `written`
    a file that was not there before; its name and sha256."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = folder / f"{kind}-{digest[:16]}.npz"
    if not path.exists():
        written.append(path)
    files.write_bytes(path, data)
    return path.name, digest


def find_model(explicit: Path | None = None) -> Path:
    """The model folder to use: --model DIR, else ./model, else the packaged default."""
    if explicit is not None:
        if not (Path(explicit) / MANIFEST).is_file():
            raise SynthError(f"{explicit}: no model here ({MANIFEST} is missing); {HOW_TO_TRAIN}")
        return Path(explicit)
    return styles.find(styles.DEFAULT).path


def load_model(folder: Path | None = None) -> Model:
    """Load and check a model folder; every problem is a SynthError that says how to fix it."""
    folder = find_model(folder)
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SynthError(f"{manifest_path}: not a readable model manifest ({exc}); "
                         f"{HOW_TO_TRAIN}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SynthError(f"{manifest_path}: not a synth model manifest; {HOW_TO_TRAIN}")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS:
        raise SynthError(f"{manifest_path}: model format version {version!r} is not one this "
                         f"synth reads ({', '.join(map(str, READABLE_VERSIONS))}); "
                         f"{HOW_TO_TRAIN}")
    weights_path, weights = _read_arrays(folder, manifest.get("weights"), "weights")
    weights = {n: np.asarray(a, dtype=np.float32) for n, a in weights.items()}
    memory = manifest.get("memory")
    tables = None
    if isinstance(memory, dict) and memory.get("tables") is not None:
        tables = _read_arrays(folder, memory["tables"], "memory tables")[1]
    check_weights(weights, str(weights_path))
    if ("length_kernel" in weights) != (version == FORMAT_VERSION):
        raise SynthError(f"{weights_path}: its weights do not match model format {version}; "
                         f"{HOW_TO_TRAIN}")
    return Model(weights=weights, manifest=manifest, path=folder, memory_tables=tables)


def _read_arrays(folder: Path, entry: Any, what: str) -> tuple[Path, dict[str, np.ndarray]]:
    """The arrays of an .npz file the manifest names, checked against its digest."""
    manifest_path = folder / MANIFEST
    name = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(name, str) or "/" in name or "\\" in name or not name.endswith(".npz"):
        raise SynthError(f"{manifest_path}: names no {what} file; {HOW_TO_TRAIN}")
    path = folder / name
    try:
        data = path.read_bytes()
    except OSError:
        raise SynthError(f"{path}: missing; {HOW_TO_TRAIN}") from None
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise SynthError(f"{path}: does not match its manifest (damaged or replaced); "
                         f"{HOW_TO_TRAIN}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return path, {n: np.asarray(npz[n]) for n in npz.files}
    except Exception as exc:  # numpy raises ValueError, OSError, zipfile errors, ...
        raise SynthError(f"{path}: not a readable {what} file ({exc}); "
                         f"{HOW_TO_TRAIN}") from None
