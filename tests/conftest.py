"""Shared fixtures: tiny songs and MIDI files built in code, and a way to run the CLI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mido
import pytest

os.environ.setdefault("COLUMNS", "200")  # keep rich tables on one line in captured output


def make_midi(path: Path, tracks: list[list[tuple[float, float, int]]], *, type: int = 1,
              tpb: int = 480, tempos: list[tuple[float, float]] = ((0.0, 120.0),),
              channel: int = 0, velocity: int = 90) -> Path:
    """Write a MIDI file; each track is a list of (start_beat, end_beat, pitch) notes.

    `tempos` is a list of (beat, bpm) set on the first track; type 0 merges all tracks into one.
    """
    events_per_track = []
    for index, notes in enumerate(tracks):
        events = []
        if index == 0:
            events += [(beat, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
                       for beat, bpm in tempos]
        for start, end, pitch in notes:
            events.append((start, 2, mido.Message("note_on", note=pitch, velocity=velocity,
                                                  channel=channel)))
            events.append((end, 1, mido.Message("note_off", note=pitch, velocity=0,
                                                channel=channel)))
        events_per_track.append(events)
    if type == 0:
        events_per_track = [[e for events in events_per_track for e in events]]
    midi = mido.MidiFile(type=type, ticks_per_beat=tpb)
    for events in events_per_track:
        track = mido.MidiTrack()
        now = 0
        for beat, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
            tick = round(beat * tpb)
            track.append(msg.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(path)
    return path


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `synth ARGS` in this process; returns (exit status, stdout, stderr)."""
    from synth import cli

    saved = sys.argv
    sys.argv = ["synth", *args]
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    """Run the CLI inside a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    return lambda *args: run_cli([str(a) for a in args], capsys)


def random_weights(units: int = 16, seed: int = 0, scale: float = 0.5,
                   lengths: bool = True) -> dict:
    """Weights of a small random LSTM in the model folder's layout: format 2 (classes and
    lengths) by default, format 1 (classes only) with lengths=False."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shapes = {"lstm_kernel": (57 if lengths else 25, 4 * units),
              "lstm_recurrent_kernel": (units, 4 * units),
              "lstm_bias": (4 * units,), "dense_kernel": (units, 25), "dense_bias": (25,)}
    if lengths:
        shapes.update({"length_kernel": (units + 25, 32), "length_bias": (32,)})
    return {k: (rng.normal(0, scale, s)).astype(np.float32) for k, s in shapes.items()}


@pytest.fixture
def tiny_model(tmp_path):
    """A saved random model folder (no TensorFlow needed)."""
    from synth.learn.model import save_model

    folder = tmp_path / "tiny-model"
    save_model(folder, random_weights(), {"start_probs": [0.0] + [1 / 24] * 24})
    return folder


# The first lines of a script that runs synth with TensorFlow and Keras unimportable: compose,
# live and record must work without them.
BLOCK_TENSORFLOW = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
        "            raise ImportError('tensorflow is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
)
