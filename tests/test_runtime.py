"""Where training runs: distribution strategies on logical CPUs and on a loopback cluster
(slow, real processes, so marked; CI still runs them)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from synth.errors import SynthError
from test_train import small_songs

pytestmark = pytest.mark.slow


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = textwrap.dedent(f"""
        from pathlib import Path
        import tensorflow as tf
        from synth.learn.train import TrainSettings, train
        from synth.music.events import events_of
        from synth.music.songs import Song
        songs = [Song(events=events_of([13, 15, 17, 18, 20, 0] * 8), title=str(i))
                 for i in range(6)]
        result = train(songs, Path({str(tmp_path / 'm')!r}),
                       TrainSettings(epochs=1, units=16, chunk=16, batch_size=8,
                                     strategy="mirrored", cpu_devices=2))
        assert len(tf.config.list_logical_devices("CPU")) == 2
        print("replicas ok", result.epochs_run)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "m" / "manifest.json").is_file()


def test_multiworker_strategy_with_a_one_worker_cluster(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TF_CONFIG=json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}))
    script = textwrap.dedent(f"""
        from pathlib import Path
        from synth.learn.train import TrainSettings, train
        from synth.music.events import events_of
        from synth.music.songs import Song
        songs = [Song(events=events_of([13, 15, 17, 18, 20, 0] * 8), title=str(i))
                 for i in range(6)]
        train(songs, Path({str(tmp_path / 'm')!r}),
              TrainSettings(epochs=1, units=16, chunk=16, batch_size=8, strategy="multiworker"))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "m" / "manifest.json").is_file()


def test_multiworker_without_tf_config_is_an_error(monkeypatch):
    from synth.learn.runtime import make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SynthError, match="TF_CONFIG"):
        make_strategy("multiworker")


def test_two_workers_on_loopback_train_one_model_written_once_by_the_chief(tmp_path):
    import socket

    from synth.learn.model import load_model
    from synth.music.songs import write_song

    for song in small_songs(8):
        write_song(tmp_path / "dataset" / f"{song.title}.txt", song)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(2):
        folder = tmp_path / f"worker{index}"
        folder.mkdir()
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}),
            PYTHONPATH=os.pathsep.join(sys.path))
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "synth.cli", "train", "--dataset", str(tmp_path / "dataset"),
             "--strategy", "multiworker", "--epochs", "2", "--batch-size", "8"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=400)
            assert worker.returncode == 0, err[-3000:]
            outs.append(out)
    finally:
        for worker in workers:
            worker.kill()
    losses = [[line for line in out.splitlines() if line.startswith("epoch ")] for out in outs]
    assert len(losses[0]) == 2 and [l.split(", ")[:2] for l in losses[0]] == \
        [l.split(", ")[:2] for l in losses[1]]  # the same losses: one model, trained together
    assert "model written to model/" in outs[0] and "the chief" in outs[1]
    model = load_model(tmp_path / "worker0" / "model")
    assert model.manifest["training"]["settings"]["strategy"] == "multiworker"
    written = sorted(p.name.split("-")[0] for p in (tmp_path / "worker0" / "model").iterdir())
    assert written == ["manifest.json", "memory", "weights"]  # each once
    assert list((tmp_path / "worker1").iterdir()) == []  # the other worker wrote nothing
    assert [p.name for p in (tmp_path / "worker0").iterdir()] == ["model"]  # no checkpoint
