import numpy as np
import pytest

from synth.play import tempo
from synth.music.songs import DEFAULT_BPM
from synth.play.tempo import Beat, distinct_onsets, estimate, fixed

# Inter-onset intervals in beats.
STEADY = [1] * 7
MIXED = [1, 1, 0.5, 0.5, 2, 1, 0.5, 0.5, 1, 1]  # quarters, eighths and a half note
DOTTED = [1.5, 0.5, 1, 1, 1.5, 0.5, 2]
WITH_RESTS = [1, 1, 2, 1, 0.5, 0.5, 3, 1]  # the 2 and 3 hold a rest after the note


def played(intervals, bpm, jitter=0.0, seed=0, start=3.0):
    """Onset times in seconds of a phrase with these intervals (beats), each onset moved by up
    to `jitter` seconds either way, as a human plays."""
    beats = np.concatenate([[0.0], np.cumsum(intervals)])
    rng = np.random.default_rng(seed)
    return list(start + beats * 60.0 / bpm + rng.uniform(-jitter, jitter, len(beats)))


@pytest.mark.parametrize("bpm", [80, 160])
@pytest.mark.parametrize("intervals", [STEADY, MIXED, DOTTED, WITH_RESTS],
                         ids=["steady", "mixed", "dotted", "rests"])
def test_an_exact_phrase_gives_its_tempo_and_its_first_beat(bpm, intervals):
    beat = estimate(played(intervals, bpm))
    assert beat.bpm == pytest.approx(bpm, rel=1e-6)
    assert beat.time == pytest.approx(3.0, abs=1e-6)
    assert beat.source == tempo.PHRASE


@pytest.mark.parametrize("bpm", [60, 80, 100, 120, 140, 160, 180])
@pytest.mark.parametrize("intervals", [STEADY, MIXED, DOTTED, WITH_RESTS],
                         ids=["steady", "mixed", "dotted", "rests"])
@pytest.mark.parametrize("seed", range(8))
def test_human_timing_within_15_ms_still_gives_the_tempo_within_3_percent(bpm, intervals,
                                                                          seed):
    onsets = played(intervals, bpm, jitter=0.015, seed=seed)
    beat = estimate(onsets)
    assert beat.bpm == pytest.approx(bpm, rel=0.03)
    # The grid it found runs through the onsets: each is within the jitter of a quarter beat.
    quarter = beat.period / 4
    off = [abs((t - beat.time) / quarter - round((t - beat.time) / quarter)) * quarter
           for t in onsets]
    assert max(off) < 0.035


def test_the_beat_is_the_commonest_interval_not_its_double_or_half():
    # The same eighth-note intervals are a fast tempo in quarter notes, not a slow one in
    # sixteenths; the same 0.75 s intervals are 80 bpm in quarters, not 160 in halves.
    assert estimate(played(STEADY, 160)).bpm == pytest.approx(160)
    assert estimate(played(STEADY, 80)).bpm == pytest.approx(80)
    assert estimate(played([0.5] * 8, 80)).bpm == pytest.approx(160)


@pytest.mark.parametrize("bpm", [45, 240])
def test_tempi_outside_the_usual_range_are_followed_when_the_phrase_is_plain(bpm):
    assert estimate(played(STEADY, bpm, jitter=0.01)).bpm == pytest.approx(bpm, rel=0.03)


def test_onsets_need_not_come_in_order():
    onsets = played(MIXED, 120)
    assert estimate(onsets[::-1]) == estimate(onsets)


def test_keys_struck_together_are_one_onset():
    onsets = played(STEADY, 100)
    chords = sorted(onsets + [t + 0.02 for t in onsets] + [t + 0.035 for t in onsets])
    assert list(distinct_onsets(chords)) == pytest.approx(onsets)
    assert estimate(chords).bpm == pytest.approx(100, rel=0.01)


def test_a_pickup_moves_the_beat_to_where_most_notes_fall():
    # An eighth-note pickup, then quarter notes: the beat is on the second note.
    onsets = played([0.5, 1, 1, 1, 1], 80)
    beat = estimate(onsets)
    assert beat.bpm == pytest.approx(80)
    assert beat.time == pytest.approx(onsets[1])


def test_a_long_phrase_follows_the_players_tempo_at_its_end():
    slow = played([1] * 100, 100)
    fast = played([1] * 80, 140, start=slow[-1] + 0.6)
    assert estimate(slow + fast).bpm == pytest.approx(140, rel=0.01)


@pytest.mark.parametrize("onsets", [[], [2.5], [2.5, 3.1], [2.5, 2.51, 3.1]])
def test_too_few_notes_fall_back_to_the_previous_tempo_or_the_default(onsets):
    first = onsets[0] if onsets else 0.0
    assert estimate(onsets) == Beat(DEFAULT_BPM, first, tempo.DEFAULT)
    assert estimate(onsets, previous=97.0) == Beat(97.0, first, tempo.PREVIOUS)


def test_a_fixed_tempo_takes_its_phase_from_the_phrase():
    onsets = played(MIXED, 90, jitter=0.01, seed=3)
    beat = fixed(onsets, 90.0)
    assert beat.bpm == 90.0 and beat.source == tempo.FIXED
    residuals = [((t - beat.time) / (beat.period / 4) + 0.5) % 1 - 0.5 for t in onsets]
    assert abs(np.mean(residuals)) < 1e-9  # the grid sits in the middle of the onsets
    assert beat.time == pytest.approx(3.0, abs=0.01)
    assert fixed([4.2], 90.0) == Beat(90.0, 4.2, tempo.FIXED)


@pytest.mark.parametrize("after,expected", [
    (3.9, 4.0), (3.0, 3.5), (3.47, 3.5), (3.481, 4.0), (2.0, 2.5), (0.1, 0.5)])
def test_the_next_beat_is_skipped_when_it_is_under_the_margin_away(after, expected):
    beat = Beat(120.0, 3.0)  # beats at ..., 2.5, 3.0, 3.5, 4.0, ...
    assert beat.next_beat(after, margin=0.02) == pytest.approx(expected)


def test_the_beat_before_counts_a_time_on_a_beat():
    beat = Beat(120.0, 3.0)
    assert beat.before(3.0) == pytest.approx(3.0)
    assert beat.before(3.49) == pytest.approx(3.0)
    assert beat.before(1.2) == pytest.approx(1.0)
