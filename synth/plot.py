"""Piano-roll pictures with matplotlib: note names up the side, seconds along the bottom."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from synth import files
from synth.notes import REST, class_name


def piano_roll(path: Path, tokens: Sequence[int], bpm: float, primer_length: int = 0,
               title: str = "") -> None:
    """Save a piano roll; primer notes and generated notes get different colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step = 60.0 / bpm
    fig, ax = plt.subplots(figsize=(max(6.0, min(24.0, len(tokens) * step / 4)), 5), dpi=100)
    for label, colour, part in (("primer", "#e07a1f", range(primer_length)),
                                ("generated", "#2a6fb0", range(primer_length, len(tokens)))):
        bars = [(i * step, step * 0.95) for i in part if tokens[i] != REST]
        rows = [tokens[i] for i in part if tokens[i] != REST]
        for (start, width), row in zip(bars, rows):
            ax.broken_barh([(start, width)], (row - 0.4, 0.8), color=colour)
        if rows:
            ax.plot([], [], color=colour, linewidth=6, label=label)
    ax.set_yticks(range(1, 25), [class_name(t) for t in range(1, 25)], fontsize=7)
    ax.set_ylim(0.3, 24.7)
    ax.set_xlim(0, max(len(tokens) * step, step))
    ax.set_xlabel("seconds")
    ax.grid(axis="y", alpha=0.25)
    ax.set_title(title or f"{len(tokens)} steps at {bpm:g} bpm")
    ax.legend(loc="upper right")
    fig.tight_layout()
    files.write_with(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
