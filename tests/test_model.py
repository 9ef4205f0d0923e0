import json

import numpy as np
import pytest

from conftest import random_weights
from synth.errors import SynthError
from synth.learn import styles
from synth.learn.model import MANIFEST, find_model, load_model, save_model


def test_save_and_load_round_trip(tiny_model):
    model = load_model(tiny_model)
    assert model.units == 16
    assert np.isclose(model.start_probs.sum(), 1) and model.start_probs[0] == 0
    assert len(list(tiny_model.glob("weights-*.npz"))) == 1


def test_saving_again_replaces_the_weights_and_cleans_up(tiny_model):
    save_model(tiny_model, random_weights(seed=9), {})
    assert len(list(tiny_model.glob("weights-*.npz"))) == 1
    assert not [p for p in tiny_model.iterdir() if p.name.startswith(".")]
    load_model(tiny_model)


def damage(folder, what):
    manifest = json.loads((folder / MANIFEST).read_text())
    weights = folder / manifest["weights"]["file"]
    if what == "manifest-garbage":
        (folder / MANIFEST).write_text("{not json")
    elif what == "manifest-list":
        (folder / MANIFEST).write_text("[1, 2]")
    elif what == "version":
        manifest["format_version"] = 99
        (folder / MANIFEST).write_text(json.dumps(manifest))
    elif what == "says-format-1":  # rhythm weights under a classes-only manifest
        manifest["format_version"] = 1
        (folder / MANIFEST).write_text(json.dumps(manifest))
    elif what == "escape":
        manifest["weights"]["file"] = "../../etc/passwd.npz"
        (folder / MANIFEST).write_text(json.dumps(manifest))
    elif what == "missing-weights":
        weights.unlink()
    elif what == "tampered":
        weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    elif what in ("pickled", "bad-shape", "nan", "half-lengths"):
        arrays = dict(np.load(weights))
        if what == "pickled":
            arrays["lstm_bias"] = np.array([{"evil": 1}], dtype=object)
            with open(weights, "wb") as f:
                np.savez(f, **arrays)
        elif what == "bad-shape":
            arrays["dense_kernel"] = arrays["dense_kernel"][:, :10]
            with open(weights, "wb") as f:
                np.savez(f, **arrays)
        elif what == "half-lengths":
            del arrays["length_bias"]
            with open(weights, "wb") as f:
                np.savez(f, **arrays)
        else:
            arrays["lstm_bias"][0] = np.nan
            with open(weights, "wb") as f:
                np.savez(f, **arrays)
        import hashlib

        manifest["weights"]["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
        (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("what,message", [
    ("manifest-garbage", "not a readable model manifest"),
    ("manifest-list", "not a synth model manifest"),
    ("version", "format version 99"),
    ("says-format-1", "do not match model format 1"),
    ("half-lengths", "length_bias are missing"),
    ("escape", "names no weights file"),
    ("missing-weights", "missing"),
    ("tampered", "does not match its manifest"),
    ("pickled", "not a readable weights file"),
    ("bad-shape", "shape"),
    ("nan", "non-finite"),
])
def test_every_broken_model_is_a_clear_error_that_says_how_to_fix_it(tiny_model, what, message):
    damage(tiny_model, what)
    with pytest.raises(SynthError) as info:
        load_model(tiny_model)
    assert message in str(info.value) and "synth train" in str(info.value)
    assert "\n" not in str(info.value)


def test_finding_the_model(tmp_path, monkeypatch, tiny_model):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SynthError, match="no model here"):
        find_model(tmp_path / "nowhere")
    assert find_model(tiny_model) == tiny_model
    assert find_model(None) == styles.PACKAGED_DEFAULT  # the packaged default


def test_a_classes_only_model_of_format_1_still_loads(tmp_path):
    save_model(tmp_path / "old", random_weights(lengths=False), {})
    manifest = json.loads((tmp_path / "old" / MANIFEST).read_text())
    assert manifest["format_version"] == 1
    model = load_model(tmp_path / "old")
    assert not model.has_lengths and model.units == 16


def test_a_rhythm_model_is_format_2_with_its_opening_lengths(tiny_model):
    model = load_model(tiny_model)
    assert model.has_lengths and model.manifest["format_version"] == 2
    assert model.start_lengths.shape == (25, 32)
    assert np.allclose(model.start_lengths.sum(axis=1), 1)
    assert np.allclose(model.start_lengths[:, 3], 1)  # none saved: one beat
