"""The terminal screens of record, live and train (synth/cli/screens.py): what each draws,
from events and answers built in code."""

from __future__ import annotations

from types import SimpleNamespace

import mido
import pytest

from synth.cli import screens
from synth.music.events import Event


@pytest.fixture
def shown(capsys):
    """What the screens printed so far."""
    return lambda: capsys.readouterr().out


def test_a_note_outside_c3_b4_is_flagged():
    assert screens.note_label(60) == "C4"
    assert "outside C3-B4, left out" in screens.note_label(30)


def test_the_note_shower_prints_each_event_once_and_flags_strays_at_once(shown):
    shower = screens.NoteShower()
    shower.message(mido.Message("note_on", note=30, velocity=80))
    shower.message(mido.Message("note_on", note=60, velocity=80))  # in range: shown as decided
    assert "outside C3-B4" in shown()
    take = SimpleNamespace(decided=lambda now: [Event(13, 4)], merged=lambda now: [])
    shower.progress(take, 1.0)
    shower.progress(take, 1.5)  # nothing new decided: nothing printed twice
    shower.finish([Event(13, 4), Event(15, 2)])
    assert shown().split() == ["C4", "D4:0.5"]


def test_the_live_screen_gives_each_turn_a_line_and_ends_it_with_tempo_and_latency(shown):
    screen = screens.LiveScreen()
    for pitch in (60, 62):
        screen.played(pitch)
    screen.played(48, kept=False)
    answer = SimpleNamespace(answer=[Event(13, 4), Event(0, 8)], played=2, interrupted=False,
                             overlapped=False, bpm=120.0, bpm_from="previous", latency_ms=3.25,
                             merged=[])
    screen.answered(answer)
    screen.sounded(answer, 1)
    screen.sounded(answer, 2)
    screen.finished(answer)
    you, synth = shown().splitlines()
    assert you.split() == ["you", "C4", "D4", "(C3)"]
    assert synth.split()[:3] == ["synth", "C4", "-:2"]
    assert synth.endswith(f"(120 bpm{screens.TEMPO_FROM['previous']}, 3.2 ms)")


def test_the_line_reporter_prints_one_line_per_epoch(shown):
    reporter = screens.LineReporter()
    reporter.start(3, 10)
    reporter.batch(0, 1, {"loss": 2.0})
    reporter.epoch(0, {"loss": 1.5, "val_loss": 1.75})
    assert shown().startswith("epoch 1/3: loss 1.500, held-out loss 1.750, ")


def test_the_metrics_table_bolds_the_models_joint_bits_and_lists_the_baseline():
    m = SimpleNamespace(class_bits=1.5, length_bits=0.8, joint_bits=2.3, class_accuracy=0.6,
                        length_accuracy=0.8)
    b = SimpleNamespace(class_order=3, length_order=2, class_bits=2.0, length_bits=1.0,
                        joint_bits=3.0)
    table = screens.metrics_table("scores", m, b, others=(("other", m),))
    assert table.row_count == 3
    assert table.columns[3]._cells[0] == "[bold]2.300[/bold]"
    assert table.columns[3]._cells[1] == "2.300"
    assert table.columns[0]._cells[2].startswith("Kneser-Ney n-grams (classes 3, lengths 2)")
