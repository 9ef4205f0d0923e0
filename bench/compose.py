"""Whole-process time of `synth compose --notes 200` against FluidSynth rendering the same notes
(SPEC section 7: under 0.3 s, and at most half FluidSynth's time), then compose's peak memory
for 200 and 10 000 events (flat in the song's length).

Each timed pair runs `synth compose --notes 200 --seed S --out song.wav --midi song.mid` from
Python's start to its exit, and `fluidsynth -ni -F fs.wav FluidR3_GM.sf2 song.mid` on the MIDI
file that run wrote, one right after the other and in turns (synth first, then FluidSynth
first), over several seeds and repeats: a machine's load falls on both alike, so their ratio
stays fair where the times alone do not. synth runs as `python -m synth.cli` from this
checkout, its bytecode compiled first as an install compiles it (with PYTHONDONTWRITEBYTECODE
set, a checkout would otherwise compile every module on every run, some 9% more work). Every
timed run must succeed (exit status 0, its WAV there and not empty): a run that fails is fast,
so one failure stops the benchmark.
"""

from __future__ import annotations

import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian's fluid-soundfont-gm
SEEDS = range(6)
REPEATS = 3  # pairs per seed, after one untimed warm-up run of each (the file cache)
NOTES = 200
SYNTH_BUDGET = 0.3  # seconds, whole process
RATIO_BUDGET = 0.5  # synth's time over FluidSynth's
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def synth_command(notes: int, seed: int, out: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "synth.cli", "compose", "--notes", str(notes), "--seed",
            str(seed), "--out", out, "--overwrite", *extra]


def timed(command: list[str], out: Path, cwd: Path) -> float:
    """Seconds `command` took from start to exit; stops the benchmark unless it succeeded and
    wrote a WAV file that is not empty."""
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if done.returncode or not out.is_file() or out.stat().st_size == 0:
        sys.exit(f"{' '.join(command)}: failed (exit status {done.returncode}, "
                 f"{out.name} {'empty' if out.is_file() else 'missing'}):\n"
                 f"{done.stderr or done.stdout}")
    return took


def duration(wav: Path) -> float:
    import soundfile

    return soundfile.info(str(wav)).duration


def side_by_side(fluidsynth: str, cwd: Path) -> None:
    song, midi, theirs = cwd / "song.wav", cwd / "song.mid", cwd / "fs.wav"
    fluid = [fluidsynth, "-ni", "-F", theirs.name, str(SOUNDFONT), midi.name]
    ours_times, their_times, ratios, seconds = [], [], [], []
    for seed in SEEDS:
        ours = synth_command(NOTES, seed, song.name, "--midi", midi.name)
        timed(ours, song, cwd)  # warm-up: the file cache, and the MIDI file FluidSynth plays
        timed(fluid, theirs, cwd)
        seconds.append((duration(song), duration(theirs)))
        for repeat in range(REPEATS):
            if (seed + repeat) % 2:  # take turns at going first
                their, our = timed(fluid, theirs, cwd), timed(ours, song, cwd)
            else:
                our, their = timed(ours, song, cwd), timed(fluid, theirs, cwd)
            ours_times.append(our)
            their_times.append(their)
            ratios.append(our / their)
    ours_median, theirs_median = statistics.median(ours_times), statistics.median(their_times)
    ratio = ours_median / theirs_median
    runs = len(ours_times)
    print(f"{NOTES} notes, seeds {SEEDS.start}-{SEEDS.stop - 1}, {REPEATS} alternating pairs "
          f"each ({runs} runs of each, all succeeded); audio: synth "
          f"{min(s for s, _ in seconds):.0f}-{max(s for s, _ in seconds):.0f} s, FluidSynth "
          f"{min(t for _, t in seconds):.0f}-{max(t for _, t in seconds):.0f} s")
    print(f"synth compose:  median {ours_median:.3f} s (best {min(ours_times):.3f}, worst "
          f"{max(ours_times):.3f})")
    print(f"fluidsynth -F:  median {theirs_median:.3f} s (best {min(their_times):.3f}, worst "
          f"{max(their_times):.3f})")
    print(f"synth / FluidSynth: {ratio:.2f}x (of the medians; median of the {runs} pairs' ratios "
          f"{statistics.median(ratios):.2f}x)")
    print(f"budget {RATIO_BUDGET}x FluidSynth: {'holds' if ratio <= RATIO_BUDGET else 'MISSED'}; "
          f"budget {SYNTH_BUDGET} s: {'holds' if ours_median < SYNTH_BUDGET else 'MISSED'} "
          f"(load average {os.getloadavg()[0]:.1f} at the end)")


def peak_memory(notes: int, cwd: Path) -> tuple[float, float, float]:
    """Peak resident memory (MB) and wall time of one `synth compose --notes N` process, and
    its audio's duration; each run in a fresh child so its peak is its own."""
    out = cwd / "long.wav"
    out.unlink(missing_ok=True)
    probe = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
             "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "took = time.perf_counter() - start; "
             "print(done.returncode, took, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(done.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, *synth_command(notes, 1, out.name)],
                          cwd=cwd, env=ENV, capture_output=True, text=True, check=True)
    first, stderr = done.stdout.split("\n", 1)
    status, took, kilobytes = first.split()
    if int(status) or not out.is_file() or out.stat().st_size == 0:
        sys.exit(f"--notes {notes}: failed (exit status {status}):\n{stderr}")
    return int(kilobytes) / 1024, float(took), duration(out)


def main() -> None:
    compileall.compile_dir(ROOT / "synth", quiet=1)
    fluidsynth = shutil.which("fluidsynth")
    with tempfile.TemporaryDirectory() as tmp:
        if fluidsynth is None or not SOUNDFONT.is_file():
            what = f"no soundfont {SOUNDFONT}" if fluidsynth else "no fluidsynth command"
            print(f"FluidSynth is missing ({what}): no comparison, and the {RATIO_BUDGET}x "
                  "budget is not checked. Install it with `apt-get install fluidsynth "
                  "fluid-soundfont-gm`.")
            song = Path(tmp) / "song.wav"
            times = [timed(synth_command(NOTES, seed, song.name), song, Path(tmp))
                     for seed in SEEDS for _ in range(REPEATS + 1)][1:]
            print(f"synth compose --notes {NOTES}: median {statistics.median(times):.3f} s "
                  f"({len(times)} runs, all succeeded); budget {SYNTH_BUDGET} s: "
                  f"{'holds' if statistics.median(times) < SYNTH_BUDGET else 'MISSED'}")
        else:
            side_by_side(fluidsynth, Path(tmp))
        peaks = {}
        for notes in (200, 10_000):
            peaks[notes], took, seconds = peak_memory(notes, Path(tmp))
            print(f"synth compose --notes {notes}: peak memory {peaks[notes]:.0f} MB, "
                  f"{took:.2f} s for {seconds:.0f} s of audio (succeeded)")
        print(f"10 000 events peak minus 200 events peak: {peaks[10_000] - peaks[200]:+.0f} MB "
              "(budget: within 50 MB)")


if __name__ == "__main__":
    main()
