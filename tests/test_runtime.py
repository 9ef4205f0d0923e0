"""Where training runs: distribution strategies on logical CPUs and on a loopback cluster, and
TensorFlow loaded quietly (slow, real processes, so marked; CI still runs them)."""

import json
import os
import re
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


# Lines TensorFlow 2.21 writes to stderr as it loads, here (a CPU without CUDA drivers).
STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796408888.491872   15398 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.\n",
    "I0000 00:00:1796408888.492183   15398 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n",
    "I0000 00:00:1796408888.540298   15398 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.\n",
    "E0000 00:00:1796408892.525107   15398 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
]
NOISE = re.compile(r"oneDNN|cuda|cuInit|absl|TensorFlow binary|instructions|Warning", re.I)


def test_the_import_window_drops_tensorflow_chatter_and_keeps_every_other_line(capfd):
    from synth.learn.runtime import _stderr_filtered

    with _stderr_filtered():
        for line in STARTUP[:3]:
            os.write(2, line.encode())
        print("a line of synth's own", file=sys.stderr)
        for line in STARTUP[3:]:
            os.write(2, line.encode())
        os.write(2, b"Traceback (most recent call last): something TensorFlow could not load\n")
    err = capfd.readouterr().err
    assert err == ("a line of synth's own\n"
                   "Traceback (most recent call last): something TensorFlow could not load\n")
    os.write(2, STARTUP[1].encode())  # and stderr is itself again after the window
    assert capfd.readouterr().err == STARTUP[1]


def test_train_prints_no_tensorflow_chatter_unless_debug(tmp_path):
    from synth.music.songs import write_song

    for song in small_songs(6):
        write_song(tmp_path / "dataset" / f"{song.title}.txt", song)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    runs = {}
    for debug in ((), ("--debug",)):
        done = subprocess.run([sys.executable, "-m", "synth.cli", *debug, "train", "--epochs",
                               "1", "--batch-size", "8", "--model", f"model{len(debug)}"],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[debug] = done
    quiet = runs[()]
    assert quiet.stderr == ""
    lines = quiet.stdout.splitlines()
    assert lines[0].startswith("epoch 1/1: loss") and lines[-1] == "model written to model0/"
    assert not [line for line in lines if NOISE.search(line)]
    # The test can fail: with --debug, TensorFlow says what it says on this machine.
    assert NOISE.search(runs[("--debug",)].stderr)
