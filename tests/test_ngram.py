import math

import numpy as np

from synth.learn.ngram import KneserNey, best_baseline


def test_distributions_sum_to_one_for_any_context():
    model = KneserNey([[1, 2, 3, 1, 2, 3, 0, 5]] * 3, order=3)
    for context in [(26 - 1, 25), (1, 2), (9, 9), (0, 5)]:
        assert math.isclose(model.probs(context).sum(), 1.0, rel_tol=1e-9)
        assert (model.probs(context) > 0).all()


def test_a_repeated_pattern_is_learned_and_the_best_order_is_picked():
    songs = [[1, 5, 8, 5] * 10 for _ in range(3)]
    model, bits = best_baseline(songs, [[1, 5, 8, 5] * 5])
    assert bits < 1.0 < math.log2(25)
    assert model.order >= 2
    assert np.all(model.logprobs([[1, 5, 8]]) > math.log(0.5))


def test_any_alphabet_size_such_as_the_32_lengths():
    model = KneserNey([[3, 3, 1, 1, 7] * 6] * 2, order=2, size=32)
    assert model.probs((3,)).shape == (32,)
    assert math.isclose(model.probs((31,)).sum(), 1.0, rel_tol=1e-9)
    assert model.probs((3,))[3] > 0.4 and model.probs((3,))[31] > 0
