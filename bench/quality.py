"""The quality benchmark (`make quality`): train synth with its defaults on bench/corpus/train
inside a time bound, then score it on bench/corpus/test beside the baselines, and check
copying. Prints one table: class bits, length bits given the class, joint bits per event, top-1
accuracy, for synth (LSTM + memory, the shipped configuration), the LSTM alone, the
IDyOM-style PPM long-term + short-term mix, the memory's own PPM models (lengths linked with
the class) without the LSTM, and the Kneser-Ney n-grams; then the copying and repeating checks.

    python bench/quality.py [--minutes 20] [--model bench/model] [--skip-training]
        [--tune] [--refit-memory]

--tune scores the memory's orders and mixing on the validation slice (the training songs
`synth train` held out) instead: how the defaults in synth/learn/ppm.py (orders) and
synth/learn/gate.py (mixing) were chosen; --refit-memory refits a trained model's memory (tables
and gate) with the current defaults. Build the corpus first with tools/build_benchmark.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synth.learn.evaluation import evaluate  # noqa: E402
from synth.learn.gate import MixSettings  # noqa: E402
from synth.learn.model import load_model  # noqa: E402
from synth.learn.ppm import LongTerm  # noqa: E402
from synth.music.songs import load_dataset  # noqa: E402

CORPUS = ROOT / "bench" / "corpus"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f}"


def train(model: Path, minutes: float, extra: list[str]) -> float:
    synth = shutil.which("synth", path=os.path.dirname(sys.executable))
    command = [synth] if synth else [sys.executable, "-m", "synth.cli"]
    start = time.monotonic()
    done = subprocess.run([*command, "train", "--dataset", str(CORPUS / "train"), "--model",
                           str(model), "--max-minutes", f"{minutes:g}", *extra],
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        sys.exit(f"synth train failed ({done.returncode})")
    return time.monotonic() - start


def row(name: str, m) -> str:
    return (f"| {name} | {m.class_bits:.3f} | {m.length_bits:.3f} | {m.joint_bits:.3f} | "
            f"{m.class_accuracy:.1%} | {m.length_accuracy:.1%} |")


def tune(model_dir: Path) -> None:
    """Memory settings scored on the validation slice: the LSTM's distributions are computed
    once, the memory's once per set of orders, then mixed by entropy weights with each bias,
    and by the gate `synth train` fits (on the same slice, so its figure is optimistic)."""
    import numpy as np

    from synth.learn.gate import fit_gate, mix
    from synth.learn.memory import Memory, song_probs
    from synth.learn.scores import next_event_probs

    model = load_model(model_dir)
    held = set(model.manifest["training"]["held_out_songs"])
    songs = load_dataset(CORPUS / "train")
    valid = [s.events for s in songs if s.name in held and len(s.events) > 1]
    fit = [s.events for s in songs if s.name not in held]
    print(f"validation slice: {len(valid)} songs; long-term models fitted on {len(fit)}")
    lstm = [next_event_probs(model, song) for song in valid]
    targets = (np.concatenate([[e.cls for e in s[1:]] for s in valid]),
               np.concatenate([[e.quarters - 1 for e in s[1:]] for s in valid]))
    lstm = (np.concatenate([c[:-1] for c, _ in lstm]), np.concatenate([ln for _, ln in lstm]))

    def bits(probs, target):
        return -np.log2(probs[np.arange(len(target)), target]).mean()

    print(f"LSTM alone: {bits(lstm[0], targets[0]):.3f} class bits, "
          f"{bits(lstm[1], targets[1]):.3f} length bits")
    for link, orders in ((False, [(4, 6, 8, 8)]),
                         (True, [(4, 3, 8, 4), (3, 3, 8, 4), (5, 3, 8, 4), (4, 2, 8, 4),
                                 (4, 4, 8, 4), (4, 3, 6, 4), (4, 3, 8, 3), (4, 3, 8, 2)])):
        for long_order, long_length, short_order, short_length in orders:
            memory = Memory(LongTerm.fit(fit, long_order, long_length, link=link), short_order,
                            short_length)
            parts = [song_probs(memory, song) for song in valid]
            long = np.concatenate([p[0][1:] for p in parts])
            short = np.concatenate([p[1][1:] for p in parts])
            line = (f"{'linked' if link else 'unlinked'} long {long_order}/{long_length} "
                    f"short {short_order}/{short_length}:")
            for head, size in ((0, 25), (1, 32)):
                models = [lstm[head], long[:, head, :size], short[:, head, :size]]
                scores = []
                for bias in (0.25, 0.5, 1.0, 2.0):
                    settings = MixSettings(bias, bias)
                    both, ppm = mix(models, size, settings), mix(models[1:], size, settings)
                    scores.append(f"b{bias:g} {bits(both, targets[head]):.3f}"
                                  f"/{bits(ppm, targets[head]):.3f}")
                gate = fit_gate(models, targets[head], size, 1.0)
                gated = MixSettings(class_gate=gate, length_gate=gate)
                line += (f" | {'class' if head == 0 else 'length'} (LSTM+memory/PPM) "
                         f"{' '.join(scores)} gate {bits(mix(models, size, gated), targets[head]):.3f}")
            print(line, flush=True)


def refit_memory(model_dir: Path) -> None:
    """Refit the model's memory as `synth train` fits it with the current defaults of
    synth/learn/ppm.py and synth/learn/gate.py (the long-term tables on its training songs, the
    gate on its validation slice), leaving the LSTM as it is: to try mixing settings without
    retraining."""
    from synth.learn.evaluation import fit_gates
    from synth.learn.gate import manifest_entry
    from synth.learn.model import save_model

    model = load_model(model_dir)
    held = set(model.manifest["training"]["held_out_songs"])
    songs = load_dataset(CORPUS / "train")
    fit = [s.events for s in songs if s.name not in held]
    long_term = LongTerm.fit(fit)
    settings = fit_gates(model, long_term, [s.events for s in songs if s.name in held])
    manifest = {k: v for k, v in model.manifest.items() if k not in ("weights", "format",
                                                                  "format_version")}
    manifest["memory"] = manifest_entry(long_term, settings,
                                        enabled=model.manifest["memory"]["enabled"])
    save_model(model_dir, model.weights, manifest, long_term.arrays())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="training time bound")
    parser.add_argument("--model", type=Path, default=ROOT / "bench" / "model")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--refit-memory", action="store_true",
                        help="refit the model's long-term tables with the current defaults")
    parser.add_argument("--compose", type=int, default=100, help="songs for the copying check")
    parser.add_argument("--train-option", action="append", default=[], metavar="OPTION",
                        help="passed to synth train (tuning: --train-option=--batch-size=64)")
    args = parser.parse_args()
    if not (CORPUS / "train").is_dir():
        sys.exit("no benchmark corpus: run `python tools/build_benchmark.py` first")
    took = None if args.skip_training else train(args.model, args.minutes, args.train_option)
    if args.refit_memory:
        refit_memory(args.model)
    if args.tune:
        tune(args.model)
        return
    start = time.monotonic()
    report = evaluate(CORPUS / "test", CORPUS / "train", args.model, args.compose, memory=True)
    scored = time.monotonic() - start
    manifest = load_model(args.model).manifest["training"]
    b = report.baselines
    print(f"\nbench/corpus/test: {len(report.songs)} songs, {report.model.events} events; "
          f"trained on {manifest['training_songs']} songs of bench/corpus/train (validation "
          f"slice {len(manifest['held_out_songs'])}), best epoch {manifest['best_epoch']} of "
          f"{manifest['epochs_run']}, stopped by {manifest['stopped_by']}")
    print(f"machine: {machine()}")
    if took is not None:
        print(f"training took {took / 60:.1f} min (bound {args.minutes:g}); scoring and "
              f"copying {scored / 60:.1f} min")
    print("\n| model | class bits | length bits (given class) | joint bits | class top-1 | "
          "length top-1 |\n|---|---|---|---|---|---|")
    print(row("synth: LSTM + memory", report.model))
    print(row("LSTM alone", report.without_memory))
    print(row("PPM long-term + short-term (IDyOM-style)", report.ppm))
    print(row("PPM, lengths linked with the class (the memory alone)", report.linked_ppm))
    print(f"| Kneser-Ney n-grams (classes {b.class_order}, lengths {b.length_order}) | "
          f"{b.class_bits:.3f} | {b.length_bits:.3f} | {b.joint_bits:.3f} | - | - |")
    print(f"\ncopying: {report.copied:.1%} of 8-event runs of {args.compose} composed songs "
          f"stand verbatim in the training songs; held-out real songs: "
          f"{report.copied_by_songs:.1%}")
    print(f"repeating: {report.repeated:.1%} of 8-event runs of the composed songs repeat an "
          f"earlier run of the same song; the test songs' first 100 events: "
          f"{report.repeated_by_songs:.1%}")


if __name__ == "__main__":
    main()
