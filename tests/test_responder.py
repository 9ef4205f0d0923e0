"""synth.play.responder: one melody carried through a live session, taken back to what sounded."""

import numpy as np

from synth.learn.generate import Runner, Sampling
from synth.music.events import Event as Ev, events_of
from synth.play.responder import Responder
from test_live import model


def test_the_melody_state_carries_through_the_session():
    responder = Responder(model(), Sampling(seed=3))
    phrase1, phrase2 = events_of([13, 17, 20]), [Ev(15, 2), Ev(18, 6)]
    first = responder.answer(phrase1, 4)
    second = responder.answer(phrase2, 3)
    assert len(first) == 4 and len(second) == 3
    fresh = Runner(model())
    fresh.feed(phrase1 + first + phrase2 + second)
    assert np.allclose(responder.melody.h, fresh.h) and np.allclose(responder.melody.c, fresh.c)


def test_a_cut_answer_is_remembered_only_as_far_as_it_sounded():
    responder = Responder(model(), Sampling(seed=3))
    phrase = [Ev(13, 4), Ev(17, 2), Ev(20, 8)]
    answer = responder.answer(phrase, 6)
    responder.heard(2)
    fresh = Runner(model())
    fresh.feed(phrase + answer[:2])
    assert np.allclose(responder.melody.h, fresh.h) and np.allclose(responder.melody.c, fresh.c)
