"""Scores in bits per event beside the n-gram baselines and the PPM baseline, with and without
the memory, and the copying check."""

import math
from pathlib import Path

import numpy as np
import pytest
from test_ppm import MOTIF, memory_model, songs_for_tests

from synth.learn.evaluation import baselines, copy_share, metrics_of, ppm_metrics, repeat_share
from synth.music.events import Event
from synth.learn.generate import Sampling, compose, memory_for
from synth.learn.model import Model, load_model
from synth.learn.ppm import LongTerm
from synth.music.songs import load_dataset

ROOT = Path(__file__).parent.parent


def ev(*pairs):
    return [Event(c, q) for c, q in pairs]


def test_bits_per_event_add_up_and_match_the_log_probabilities():
    from conftest import random_weights

    model = Model(random_weights(seed=4))
    songs = [ev((13, 4), (15, 2), (17, 2), (0, 8), (13, 4)), ev((1, 1), (3, 1), (5, 2))]
    m = metrics_of(model, songs)
    assert m.events == 6
    assert m.joint_bits == pytest.approx(m.class_bits + m.length_bits)
    assert m.loss == pytest.approx(m.joint_bits * math.log(2))
    assert 0 < m.class_bits < 10 and 0 < m.length_bits < 10
    assert 0 <= m.class_accuracy <= 1 and 0 <= m.length_accuracy <= 1


def test_the_memory_lowers_the_bits_of_a_song_that_repeats_itself(tmp_path):
    model = load_model(memory_model(tmp_path, songs_for_tests()[1:]))
    song = MOTIF * 5
    alone = metrics_of(model, [song])
    mixed = metrics_of(model, [song], memory_for(model))
    assert mixed.class_bits < alone.class_bits - 1 and mixed.length_bits < alone.length_bits
    ppm = ppm_metrics(LongTerm.fit(songs_for_tests()[1:], 3, 4), [song])
    assert ppm.class_bits < alone.class_bits and ppm.events == alone.events


def test_the_length_baseline_learns_a_rhythm_and_ignores_transpositions():
    waltz = ev((13, 8), (15, 4), (17, 4)) * 8
    transposed = [Event(e.cls + 2, e.quarters) for e in waltz]
    b = baselines([waltz, transposed], [ev((20, 8), (18, 4), (17, 4)) * 3])
    assert b.length_bits < 0.5 < b.class_bits  # the rhythm repeats; the notes are new
    assert b.joint_bits == pytest.approx(b.class_bits + b.length_bits)


def test_copying_counts_runs_of_classes_with_their_lengths():
    training = [ev(*[(c, 4) for c in range(1, 20)])]
    assert copy_share([ev(*[(c, 4) for c in range(3, 13)])], training) == 1.0
    assert copy_share([ev(*[(c, 2) for c in range(3, 13)])], training) == 0.0


def test_repeating_counts_runs_that_come_back_in_the_same_song():
    phrase = [Event(c, 2) for c in (13, 15, 17, 18, 20, 18, 17, 15)]
    assert repeat_share([phrase]) == 0.0
    assert repeat_share([phrase * 2]) == pytest.approx(1 / 9)  # 9 windows, the last repeats
    # Repeats inside one song only: the same phrase in two songs repeats nothing.
    assert repeat_share([phrase, phrase]) == 0.0
    # Lengths count: the same classes in another rhythm are new material.
    assert repeat_share([phrase + [Event(e.cls, 4) for e in phrase]]) == 0.0
    assert repeat_share([phrase[:5]]) == 0.0  # too short for one window


def test_the_shipped_model_composes_rhythms_like_the_training_songs():
    """The length histogram of composed songs lies within 0.15 total-variation distance of
    the training songs' (the rhythm issue's yardstick). Composed like the dataset: three
    songs for each training song, each as many events long, pooled, so that long and short
    songs weigh in the two histograms alike."""
    model = load_model(ROOT / "synth" / "assets" / "model")
    songs = load_dataset(ROOT / "dataset")
    training = np.bincount([e.quarters for s in songs for e in s.events], minlength=33)[1:]
    made = np.zeros(32)
    for seed, song in enumerate(songs * 3):
        composed = compose(model, len(song.events), sampling=Sampling(seed=seed))
        made += np.bincount([e.quarters for e in composed], minlength=33)[1:]
    distance = 0.5 * np.abs(training / training.sum() - made / made.sum()).sum()
    assert distance < 0.15
