"""The fast paths keep their meaning: the fused step is the LSTM, the Gumbel-max draws follow
the model's distributions, block-drawn noise is the same stream as event-by-event draws, and
the faster render and WAV writing sound as before."""

import numpy as np
import pytest

from conftest import random_weights
from synth.music.events import Event
from synth.learn.generate import (Runner, Sampling, continue_melody, next_event, restore, softmax,
                                  state)
from synth.learn.model import Model
from synth.learn.scores import score_songs


def plain_lstm(weights, events):
    """The Keras equations written out slowly: class and length logits after each event."""
    u = weights["lstm_recurrent_kernel"].shape[0]
    h, c = np.zeros(u), np.zeros(u)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    out = []
    for e in events:
        x = np.zeros(57)
        x[e.cls], x[25 + e.quarters - 1] = 1, 1
        z = x @ weights["lstm_kernel"] + h @ weights["lstm_recurrent_kernel"] + weights["lstm_bias"]
        i, f, g, o = sig(z[:u]), sig(z[u:2 * u]), np.tanh(z[2 * u:3 * u]), sig(z[3 * u:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append((h @ weights["dense_kernel"] + weights["dense_bias"],
                    h @ weights["length_kernel"][:u] + weights["length_bias"]))
    return out


def some_events(n, seed=0):
    rng = np.random.default_rng(seed)
    return [Event(int(c), int(q)) for c, q in zip(rng.integers(0, 25, n), rng.integers(1, 33, n))]


def test_the_fused_step_is_the_lstm():
    weights = random_weights(units=16, scale=0.8)
    events = some_events(30)
    melody = Runner(Model(weights))
    for event, (class_logits, length_logits) in zip(events, plain_lstm(weights, events)):
        melody.step(event.cls, event.quarters - 1)
        assert np.allclose(melody.class_logits(), class_logits, atol=1e-5)
        chosen = 7
        expected = length_logits + weights["length_kernel"][16 + chosen]
        assert np.allclose(melody.length_logits(chosen), expected, atol=1e-5)


def test_step_by_step_agrees_with_batched_scoring():
    model = Model(random_weights(units=16, seed=3))
    songs = [some_events(9, 1), some_events(2, 2), some_events(14, 3)]
    scores = score_songs(model, songs)
    expected_class, expected_length = [], []
    for song in songs:
        melody = Runner(model)
        for event, after in zip(song, song[1:]):
            melody.step(event.cls, event.quarters - 1)
            expected_class.append(np.log(softmax(melody.class_logits())[after.cls]))
            expected_length.append(
                np.log(softmax(melody.length_logits(after.cls))[after.quarters - 1]))
    assert np.allclose(scores.classes, expected_class, atol=1e-5)
    assert np.allclose(scores.lengths, expected_length, atol=1e-5)


@pytest.mark.parametrize("sampling", [Sampling(seed=4), Sampling(temperature=0.6, seed=5),
                                      Sampling(top_p=0.8, seed=6)])
def test_continuing_is_drawing_event_by_event_with_the_same_rng(sampling):
    """Noise drawn in blocks is the same stream as noise drawn per event, across blocks."""
    model = Model(random_weights(units=16, seed=2))
    a = Runner(model)
    fast = continue_melody(a, 600, sampling, np.random.default_rng(sampling.seed))
    b = Runner(model)
    rng = np.random.default_rng(sampling.seed)
    slow = []
    for _ in range(600):
        slow.append(next_event(b, sampling, rng))
        b.step(slow[-1].cls, slow[-1].quarters - 1)
    assert fast == slow
    assert np.array_equal(a.h, b.h) and np.array_equal(a.c, b.c)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.5, 1.0), (2.0, 1.0), (1.0, 0.75)])
def test_draws_follow_the_distributions_of_both_heads(temperature, top_p):
    model = Model(random_weights(units=16, seed=5, scale=0.3))
    melody = Runner(model)
    melody.step(5, 3)
    saved = state(melody)
    sampling = Sampling(temperature=temperature, top_p=top_p)
    rng = np.random.default_rng(0)
    n = 20_000
    classes = np.zeros(25)
    lengths = {}
    for _ in range(n):
        restore(melody, saved)
        event = next_event(melody, sampling, rng)
        classes[event.cls] += 1
        lengths.setdefault(event.cls, np.zeros(32))[event.quarters - 1] += 1

    def expected(logits):
        p = softmax(logits, temperature)
        if top_p < 1:
            order = np.argsort(-p, kind="stable")
            keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
            kept = np.zeros_like(p)
            kept[keep] = p[keep]
            p = kept / kept.sum()
        return p

    def close(counts, p):
        """Total variation within 3 standard errors of sampling noise."""
        m = counts.sum()
        return 0.5 * np.abs(counts / m - p).sum() < 1.5 * np.sqrt(p * (1 - p) / m).sum()

    p_class = expected(melody.class_logits())
    assert close(classes, p_class)
    assert classes[p_class == 0].sum() == 0
    common = int(classes.argmax())
    p_length = expected(melody.length_logits(common))
    seen = lengths[common]
    assert close(seen, p_length)
    assert seen[p_length == 0].sum() == 0


def test_a_classes_only_model_gives_every_event_one_beat():
    model = Model(random_weights(units=16, lengths=False))
    events = continue_melody(Runner(model), 300, Sampling(temperature=5.0),
                             np.random.default_rng(1))
    assert {e.quarters for e in events} == {4}


def test_the_first_event_opens_like_training_songs():
    starts = np.zeros(25)
    starts[[13, 20]] = [0.75, 0.25]
    model = Model(random_weights(units=16), {"start_probs": starts.tolist()})
    firsts = [continue_melody(Runner(model), 1, Sampling(temperature=3.0),
                              np.random.default_rng(s))[0].cls for s in range(400)]
    assert set(firsts) == {13, 20}
    assert 0.65 < firsts.count(13) / 400 < 0.85


def test_restoring_a_saved_state_continues_exactly_as_before():
    model = Model(random_weights(units=16, seed=7))
    melody = Runner(model)
    continue_melody(melody, 5, Sampling(seed=1), np.random.default_rng(1))
    saved = state(melody)
    continue_melody(melody, 15, Sampling(seed=1), np.random.default_rng(3))
    restore(melody, saved)
    again = continue_melody(melody, 10, Sampling(seed=2), np.random.default_rng(2))
    fresh = Runner(model)
    restore(fresh, saved)
    assert again == continue_melody(fresh, 10, Sampling(seed=2), np.random.default_rng(2))


def loud_song(n=60):
    rng = np.random.default_rng(9)
    return [Event(int(c), int(q)) for c, q in zip(rng.integers(1, 25, n), rng.choice([1, 2, 4], n))]


def test_the_chain_block_by_block_is_one_pass_over_the_whole_song():
    """Streaming blocks (with the limiter on its own thread) changes no sample."""
    from synth.sound import effects
    from synth.sound.piano import RATE, render_notes

    settings = effects.Effects()
    dry = render_notes(loud_song())
    tail = int(effects.REVERB_TAIL_SECONDS * settings.room_size * RATE)
    limiter = effects.Limiter(RATE)
    padded = np.concatenate([dry, np.zeros(tail + limiter.delay + limiter.CHUNK, np.float32)])
    assert padded.shape[0] > 2 * effects.BLOCK  # several blocks, and a part-block at the end
    filtered = effects.Lowpass(settings.cutoff, RATE)(padded)
    room = effects.reverb(settings)(np.repeat(filtered[None, :], 2, axis=0), RATE)
    whole = limiter(room)[:, limiter.delay :][:, : len(dry) + tail]
    blocks = effects._chain(effects._reader(dry), len(dry) + tail, RATE, settings, 1.0)
    assert np.array_equal(np.concatenate(list(blocks)).T, whole)


def test_the_song_peaks_at_or_below_the_ceiling():
    from synth.sound.effects import CEILING_DB, Effects, apply, db
    from synth.sound.piano import RATE, Performance, render_notes

    dry = render_notes(loud_song(), Performance(bpm=400), velocities=[127] * 60) * 4
    audio = apply(dry, RATE, Effects())
    assert db(np.abs(audio).max()) <= CEILING_DB + 1e-6
    assert audio.shape[1] == 2


def test_wav_samples_are_the_ones_soundfile_would_write(tmp_path):
    import soundfile

    from synth.sound.render import pcm16, save_audio

    rng = np.random.default_rng(0)
    edges = [0.0, -1e-12, 7.6e-6 / 32768, -7.6e-6 / 32768, -8e-6 / 32768, 0.5 / 32768,
             -0.5 / 32768, 1.0, -1.0, 1.5, -1.5, 0.99999994]
    mono = np.concatenate([edges, rng.uniform(-1.1, 1.1, 200_000),
                           np.arange(-3000, 3000) / 1000 / 32768]).astype(np.float32)
    audio = np.stack([mono, mono[::-1]]).T  # (frames, 2), not C-contiguous, as apply gives it
    soundfile.write(tmp_path / "reference.wav", audio, 44100, subtype="PCM_16")
    save_audio(tmp_path / "ours.wav", audio)
    reference, _ = soundfile.read(tmp_path / "reference.wav", dtype="int16")
    ours, rate = soundfile.read(tmp_path / "ours.wav", dtype="int16")
    assert rate == 44100 and np.array_equal(ours, reference)
    assert np.array_equal(pcm16(audio), reference)


def test_a_song_loads_only_the_samples_it_plays():
    from synth.sound import piano

    dry = piano.render_notes([Event(13, 4), Event(0, 4), Event(13, 2)])
    both = piano.Voices()  # the whole bank, as live uses it
    both.down(60, piano.DEFAULT_VELOCITY, 0)
    both.up(60, round(piano.frames_per_quarter(150) * 4))
    assert np.array_equal(dry[:1000], both.render(1000))
    assert set(piano.samples([60, 60, 62])) == {60, 62}
    assert both.grown.wait(30)  # live's piano decodes the rest of each key on a thread


def test_decoding_only_what_sounds_changes_no_sample(monkeypatch):
    from synth.sound import piano

    monkeypatch.setattr(piano, "_decoded", {})
    monkeypatch.setattr(piano, "_complete", set())
    events = some_events(40, 4)  # rests, short notes, notes held up to 8 beats
    performance = piano.Performance(bpm=200, humanize=0.5, seed=1)
    partly = piano.render_notes(events, performance)
    decoded = {p: len(a) for p, a in piano._decoded.items()}
    whole = piano.samples()  # every sample decoded to its end
    assert any(decoded[p] < len(whole[p]) for p in decoded)
    assert np.array_equal(piano.render_notes(events, performance), partly)
