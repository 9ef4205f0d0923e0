"""synth.play.exchanges: a phrase and its answer, and their line in the --log file."""

import json

import pytest

from synth.music.events import Event as Ev
from synth.play.exchanges import Exchange


def test_exchange_log_lines_are_plain_json():
    exchange = Exchange(time=1.23456, phrase=[Ev(13, 2)], answer=[Ev(0, 4), Ev(17, 6)],
                        latency_ms=1.23456, bpm=91.23456, start=1.55556, played=2, gap=0.98765,
                        release=0.24691)
    assert json.loads(json.dumps(exchange.record())) == {
        "time": 1.235, "phrase": [13], "answer": [0, 17], "latency_ms": 1.235,
        "bpm": 91.23, "start": 1.5556, "bpm_from": "phrase", "played": 2,
        "interrupted": False, "left_out": 0, "under": 0, "phrase_lengths": [0.5],
        "answer_lengths": [1.0, 1.5], "gap": 0.988, "gap_beats": 1.5, "release": 0.247,
        # the first note comes after the one-beat rest: 1.55556 + 60 / 91.23456 - 0.24691
        "delay": 1.966, "delay_beats": 2.99, "early": False, "overlapped": False, "merged": []}
    assert exchange.seconds == pytest.approx(2.5 * 60 / 91.23456)
    exchange.played = 1  # only the rest sounded: no answer note, no delay
    assert exchange.record()["delay"] is None and exchange.record()["delay_beats"] is None
