"""Piano-roll pictures with matplotlib: each note as long as it lasts over the beat grid,
note names up the side, beats along the bottom and seconds along the top."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from synth import files
from synth.music.events import QUARTERS_PER_BEAT, Event, starts, total_beats
from synth.music.notes import class_name

PRIMER_COLOUR = "#e07a1f"
GENERATED_COLOUR = "#2a6fb0"
BEATS_PER_BAR = 4  # a stronger grid line every 4 beats


def piano_roll(path: Path, events: Sequence[Event], bpm: float, primer_length: int = 0,
               title: str = "") -> None:
    """Save a piano roll (PNG); primer notes and generated notes get different colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    beats = max(total_beats(events), 1.0)
    pitches = [e.cls for e in events if not e.is_rest]
    low = max(min(pitches, default=1) - 2, 1)
    high = min(max(pitches, default=24) + 2, 24)
    width = max(6.0, min(30.0, 1.5 + beats * 0.22))
    fig, ax = plt.subplots(figsize=(width, 1.3 + 0.2 * (high - low + 1)), dpi=110)

    for row in range(low, high + 1):  # black keys shaded, as on a keyboard
        if "#" in class_name(row):
            ax.axhspan(row - 0.5, row + 0.5, color="#f0f0f0", zorder=0, linewidth=0)
    for beat in range(int(beats) + 1):
        bar = beat % BEATS_PER_BAR == 0
        ax.axvline(beat, color="#9a9a9a" if bar else "#d8d8d8", linewidth=1.0 if bar else 0.6,
                   zorder=1)

    for label, colour, part in (("primer", PRIMER_COLOUR, range(primer_length)),
                                ("generated", GENERATED_COLOUR,
                                 range(primer_length, len(events)))):
        onsets = starts(events)
        bars = [(onsets[i] / QUARTERS_PER_BEAT, events[i].beats, events[i].cls)
                for i in part if not events[i].is_rest]
        for start, length, row in bars:
            ax.broken_barh([(start, length)], (row - 0.38, 0.76), facecolor=colour,
                           edgecolor="white", linewidth=0.8, zorder=2)
        if bars:
            ax.plot([], [], color=colour, linewidth=6, label=label)

    ax.set_yticks(range(low, high + 1), [class_name(t) for t in range(low, high + 1)],
                  fontsize=7)
    ax.set_ylim(low - 0.5, high + 0.5)
    ax.set_xlim(0, beats)
    ax.set_xticks(range(0, int(beats) + 1, BEATS_PER_BAR))
    ax.set_xticks(range(0, int(beats) + 1), minor=True)
    ax.set_xlabel(f"beats (at {bpm:g} bpm)")
    seconds = ax.secondary_xaxis("top", functions=(lambda b: b * 60.0 / bpm,
                                                   lambda s: s * bpm / 60.0))
    seconds.tick_params(labelsize=7)
    seconds.set_xlabel("seconds", fontsize=7, labelpad=2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=7)
    notes = len(pitches)
    ax.set_title(title or "piano roll", loc="left", fontsize=10, pad=18)
    rests = len(events) - notes
    ax.set_title(f"{notes} note{'s' * (notes != 1)}, {rests} rest{'s' * (rests != 1)}, "
                 f"{beats:g} beats",
                 loc="right", fontsize=8, color="#666666", pad=18)
    if pitches and primer_length:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    files.write_with(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
