"""What training reads: transposed copies, the tf.data batches and their shuffling (slow:
TensorFlow, so marked; CI still runs them)."""

import numpy as np
import pytest

from synth.music.events import Event
from synth.music.songs import Song, transpositions
from test_train import ev, small_songs

pytestmark = pytest.mark.slow


def test_transpositions_cover_every_shift_in_range_and_keep_lengths():
    shifted = transpositions(ev((1, 2), (0, 8), (13, 1)))  # spans C3..C4: 12 more semitones
    assert len(shifted) == 12 and shifted[0] == ev((1, 2), (0, 8), (13, 1))
    assert shifted[-1] == ev((12, 2), (0, 8), (24, 1))
    assert transpositions(ev((0, 4), (0, 2))) == [ev((0, 4), (0, 2))]


def batches_of(dataset):
    return [np.concatenate(part) for part in zip(*[[t.numpy() for t in b] for b in dataset])]


def test_the_pipeline_reads_each_event_once_in_whole_batches():
    from synth.learn.batches import corpus, pipeline

    song = [Event(c, c) for c in range(1, 11)]
    steps, targets, w = batches_of(pipeline(corpus([song], augment=False), 4, batch_size=2))
    assert steps.shape == (4, 4, 3) and w.sum() == 9  # 3 chunks and 1 of padding: 2 batches
    real = w > 0
    assert targets[..., 0][real].tolist() == list(range(2, 11))
    assert targets[..., 1][real].tolist() == list(range(1, 10))  # length class = quarters - 1
    assert steps[..., 1][real].tolist() == list(range(0, 9))
    assert (steps[..., 2] == targets[..., 0]).all()  # the length head reads the next class


def test_the_pipeline_transposes_as_it_goes_and_weights_each_song_as_its_events():
    from synth.learn.batches import corpus, pipeline

    narrow, wide = ev((13, 4), (14, 4), (0, 2), (13, 4)), ev((1, 1), (24, 1), (12, 2))
    data = corpus([Song(events=narrow), Song(events=wide)], augment=True)
    steps, targets, w = batches_of(pipeline(data, 64, 4, epochs=range(1), seed=1))
    copies = {tuple(row[weights > 0]) for row, weights in zip(steps[..., 0], w)}
    assert copies == {tuple(e.cls for e in c[:-1]) for c in transpositions(narrow)} | \
        {tuple(e.cls for e in wide[:-1])}
    assert len(copies) == 23 + 1
    # each song weighs as much as its own events (3 and 2 targets), however many copies
    is_wide = ((steps[..., 0] == 24).any(axis=1) & (steps[..., 0] == 1).any(axis=1))
    assert w[~is_wide].sum() / 3 == pytest.approx(w[is_wide].sum() / 2, rel=1e-5)
    # and the weights average 1 over the copies' events
    sizes = np.array([4, 3])[data.song]
    assert (sizes * data.weight).sum() == pytest.approx(sizes.sum(), rel=1e-5)


def test_the_pipeline_shuffles_by_epoch_the_same_way_each_time():
    from synth.learn.batches import corpus, pipeline

    data = corpus(small_songs(4), augment=True)
    first = batches_of(pipeline(data, 16, 8, epochs=range(0, 3), seed=5))[0]
    resumed = batches_of(pipeline(data, 16, 8, epochs=range(2, 3), seed=5))[0]
    per_epoch = len(first) // 3
    assert np.array_equal(first[2 * per_epoch:], resumed)
    assert not np.array_equal(first[:per_epoch], first[per_epoch:2 * per_epoch])
