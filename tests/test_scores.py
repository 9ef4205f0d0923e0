"""Scoring: songs scored side by side in one batch get the probabilities the cell gives them
event by event."""

import numpy as np
from conftest import random_weights
from test_generate import RHYTHMIC, song

from synth.learn.model import Model
from synth.learn.scores import next_event_probs, score_songs


def test_batched_scoring_matches_step_by_step():
    model = Model(random_weights(seed=3))
    songs = [song((13, 4), (15, 2), (17, 2), (0, 4), (18, 16)), song((1, 1), (2, 32)),
             RHYTHMIC[:7]]
    scores = score_songs(model, songs)
    classes, lengths, class_hit, length_hit = [], [], [], []
    for events in songs:
        class_probs, length_probs = next_event_probs(model, events)
        for p, q, event in zip(class_probs, length_probs, events[1:]):
            classes.append(np.log(p[event.cls]))
            lengths.append(np.log(q[event.quarters - 1]))
            class_hit.append(p.argmax() == event.cls)
            length_hit.append(q.argmax() == event.quarters - 1)
    assert np.allclose(scores.classes, classes, atol=1e-5)
    assert np.allclose(scores.lengths, lengths, atol=1e-5)
    assert np.allclose(scores.joint, np.add(classes, lengths), atol=1e-5)
    assert scores.class_hit.tolist() == class_hit and scores.length_hit.tolist() == length_hit
