"""What the commands draw on the terminal: the consoles, the record and live screens, and the
training progress and score tables; printing only, no work of their own."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table

    from synth.learn.evaluation import Baselines, Metrics
    from synth.music.events import Event
    from synth.play.inputs import Input
    from synth.play.take import Take
    from synth.play.live import Exchange

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

MERGED_LIVE = "play them slower to keep them"

# How an answer's tempo was found, as the end of its line says it.
TEMPO_FROM = {"phrase": "", "fixed": " fixed",
              "previous": " as before: too few notes to hear a tempo",
              "default": " by default: too few notes to hear a tempo"}


def show_input(source: Input) -> None:
    """Say what is listened to; the computer keyboard gets a picture of its keys."""
    from synth.play.inputs import KeysInput, keyboard_picture

    console.print(f"Listening to the {source.description}.")
    if isinstance(source, KeysInput):
        console.print(keyboard_picture())


def note_label(pitch: int) -> str:
    """A played note's name; notes outside C3-B4 flagged, as they are left out."""
    from synth.music.notes import in_range, midi_name

    name = midi_name(pitch)
    return name if in_range(pitch) else f"[yellow]{name}(outside C3-B4, left out)[/yellow]"


def merged_labels(notes: list) -> str:
    """Notes merged for want of room on the grid, flagged as they go."""
    from synth.music.notes import midi_name

    return " ".join(f"[yellow]{midi_name(n.pitch)}(too fast, merged)[/yellow]" for n in notes)


class NoteShower:
    """Prints each event of a take (note name and length, rests too) as soon as the playing has
    decided it, flags keys outside C3-B4 the moment they are struck, and notes merged for want
    of room on the grid the moment they are."""

    def __init__(self) -> None:
        self.shown = 0
        self.merged = 0  # merged notes flagged

    def message(self, msg) -> None:
        from synth.music.notes import in_range
        from synth.play.inputs import is_press

        if is_press(msg) and not in_range(msg.note):
            console.print(note_label(msg.note), end=" ")

    def progress(self, take: Take, now: float) -> None:
        self._show(take.decided(now))
        merged = take.merged(now)
        if len(merged) > self.merged:
            console.print(merged_labels(merged[self.merged:]), end=" ")
            self.merged = len(merged)

    def finish(self, events: list[Event]) -> None:
        """The take is over: the events not shown yet (the last note at least)."""
        self._show(events)
        console.print()

    def _show(self, events: list[Event]) -> None:
        from synth.music.events import event_name

        for event in events[self.shown:]:
            console.print(event_name(event), end=" ")
        self.shown = max(self.shown, len(events))


class LiveScreen:
    """Draws the conversation, one line per turn: what you play as you play it, then what the
    model answers as it sounds, its tempo and latency at the end of the line."""

    def __init__(self) -> None:
        self.line = ""  # who the open line belongs to: "you", "synth" or nobody
        self.shown = 0  # events of the answer shown

    def _open(self, who: str) -> None:
        if self.line != who:
            if self.line:
                console.print()
            console.print(f"[bold]{who:<5}[/bold]", end="  ")
            self.line = who

    def played(self, pitch: int, kept: bool = True) -> None:
        self._open("you")
        # A note under a higher one still held (a left hand) is left out of the phrase.
        console.print(note_label(pitch) if kept else f"[dim]({note_label(pitch)})[/dim]",
                      end=" ")

    def answered(self, exchange: Exchange) -> None:
        from synth.play.take import merged_warning

        if exchange.merged:  # said at the end of the phrase's line, before the answer's
            self._open("you")
            console.print(f"[yellow]({merged_warning(exchange.merged, exchange.bpm, MERGED_LIVE)})"
                          "[/yellow]", end=" ")
        self.shown = 0
        self._open("synth")

    def sounded(self, exchange: Exchange, count: int) -> None:
        from synth.music.events import event_name

        self._open("synth")
        console.print(" ".join(event_name(e) for e in exchange.answer[self.shown:count]),
                      end=" ")
        self.shown = count

    def finished(self, exchange: Exchange) -> None:
        self._open("synth")
        cut = f"; cut short after {exchange.played} events" if exchange.interrupted else ""
        if exchange.overlapped:
            cut = f"; {exchange.played} events, to the end of the bar you came in on"
        console.print(f" [dim]({exchange.bpm:.0f} bpm{TEMPO_FROM[exchange.bpm_from]}, "
                      f"{exchange.latency_ms:.1f} ms{cut})[/dim]")
        self.line = ""


class LineReporter:
    """Training progress as one line per epoch, for logs (CI, a cluster) rather than a
    terminal."""

    def __init__(self) -> None:
        self.clock = time.monotonic
        self.epochs = 0
        self.began = self.clock()

    def start(self, epochs: int, batches: int) -> None:
        self.epochs = epochs
        self.began = self.clock()

    def batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None:
        pass

    def note(self, text: str) -> None:
        console.print(text, soft_wrap=True)

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        held = f", held-out loss {logs['val_loss']:.3f}" if "val_loss" in logs else ""
        console.print(f"epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', 0):.3f}{held}, "
                      f"{self.clock() - self.began:.0f} s", soft_wrap=True)


class RichReporter:
    """Draws training progress: one bar over all epochs, loss and accuracy as it goes."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None
        self.batches = 1
        self.last = ""

    def note(self, text: str) -> None:
        self.progress.console.print(text, soft_wrap=True)

    def start(self, epochs: int, batches: int) -> None:
        self.batches = batches
        self.task = self.progress.add_task("training", total=epochs * batches, stats="")

    def batch(self, epoch: int, batch: int, logs: dict[str, float]) -> None:
        stats = f"epoch {epoch + 1}  loss {logs.get('loss', 0):.3f}{self.last}"
        self.progress.update(self.task, completed=epoch * self.batches + batch + 1, stats=stats)

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        if "val_loss" in logs:
            self.last = f"  held-out loss {logs['val_loss']:.3f}"
        self.progress.update(self.task, completed=(epoch + 1) * self.batches)


def metrics_table(title: str, metrics: Metrics, baselines: Baselines, name: str = "LSTM",
                  classes_only: bool = False, others: tuple = ()) -> Table:
    """Bits per event (class, length given the class, joint) and accuracies, beside the
    baselines; `others` are more (name, metrics) rows."""
    from rich.table import Table

    table = Table("model", "class bits", "length bits", "joint bits", "class acc.",
                  "length acc.", title=title)
    for row, (label, m) in enumerate(((name, metrics), *others)):
        length = "-" if classes_only else f"{m.length_bits:.3f}"
        joint = "-" if classes_only else f"{m.joint_bits:.3f}"
        table.add_row(label, f"{m.class_bits:.3f}", length,
                      joint if row else f"[bold]{joint}[/bold]", f"{m.class_accuracy:.1%}",
                      "-" if classes_only else f"{m.length_accuracy:.1%}")
    b = baselines
    table.add_row(f"Kneser-Ney n-grams (classes {b.class_order}, lengths {b.length_order})",
                  f"{b.class_bits:.3f}", f"{b.length_bits:.3f}", f"{b.joint_bits:.3f}", "-", "-")
    return table
