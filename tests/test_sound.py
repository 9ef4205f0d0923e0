"""The piano and the effects: measurable properties of audio the tests make themselves."""

import numpy as np
import pytest
import soundfile

from synth.audio import render_song, save_audio
from synth.effects import Effects, apply, db
from synth.errors import SynthError
from synth.events import Event, events_of
from synth.piano import RATE, Performance, render_notes

DRY = Effects(enabled=False)


def detected_onsets(audio, threshold=0.02):
    """Sample indices where the signal first rises above threshold after a quiet stretch."""
    envelope = np.abs(audio if audio.ndim == 1 else audio.mean(axis=1))
    rising = np.flatnonzero(envelope > threshold)
    return [rising[0]] + [b for a, b in zip(rising, rising[1:]) if b - a > RATE * 0.05]


@pytest.mark.parametrize("bpm,rests", [(60, 1), (150, 1), (300, 2)])
def test_onsets_land_on_the_beat_grid_within_5_ms(bpm, rests):
    gap = [0] * rests  # silence between notes (longer than the release), so onsets stand alone
    tokens = [13, *gap, 17, *gap, 20, *gap, 1, *gap, 24]
    audio = render_notes(events_of(tokens), Performance(bpm=bpm))
    step = 60 / bpm * RATE
    expected = [i * step for i, t in enumerate(tokens) if t]
    found = detected_onsets(audio)
    assert len(found) == len(expected)
    assert np.max(np.abs(np.array(found) - expected)) / RATE < 0.005


def test_repeated_notes_are_repeated_strikes():
    audio = render_notes(events_of([13, 13, 13]), Performance(bpm=60))
    for i in (1, 2):  # the energy right after each onset jumps up again
        before = np.abs(audio[i * RATE - 2000 : i * RATE]).mean()
        after = np.abs(audio[i * RATE + 200 : i * RATE + 2200]).mean()
        assert after > 2 * before


@pytest.mark.parametrize("tokens", [[13], [13, 0], [1, 0, 24, 0, 12, 0, 12], [7, 0, 0, 8]])
@pytest.mark.parametrize("bpm", [60, 150, 400])
def test_releases_never_click(tokens, bpm):
    audio = render_notes(events_of(tokens), Performance(bpm=bpm))
    step = round(60 / bpm * RATE)
    onsets = [i * step for i, t in enumerate(tokens) if t] + [len(audio)]
    for index, token in enumerate(tokens):
        if not token:
            continue
        key_up = (index + 1) * step
        next_onset = min(o for o in onsets if o > index * step)
        held = audio[key_up - int(0.02 * RATE) : key_up]
        release = audio[key_up : min(key_up + int(0.3 * RATE), next_onset - 1)]
        # a hard cut would jump by the note's whole amplitude; a smooth release never moves
        # much faster than the ringing note did just before the key came up
        assert np.max(np.abs(np.diff(release))) <= 1.5 * np.max(np.abs(np.diff(held)))
    assert abs(audio[-1]) < 1e-4


def test_a_rest_is_silence_after_the_release():
    audio = render_notes(events_of([13, 0, 0]), Performance(bpm=60))
    assert np.abs(audio[int(1.3 * RATE) : 3 * RATE]).max() < 1e-3  # damper down after 0.25 s
    assert np.abs(audio[: RATE]).max() > 0.1


def test_velocity_scales_loudness():
    soft = render_notes(events_of([13]), velocities=[40])
    loud = render_notes(events_of([13]), velocities=[120])
    assert np.abs(loud).max() > 3 * np.abs(soft).max()


def test_humanize_moves_notes_a_little_and_is_seeded():
    tokens = [13, 0, 17, 0, 20, 0, 22]
    exact = detected_onsets(render_notes(events_of(tokens), Performance(bpm=100)))
    sloppy = render_notes(events_of(tokens), Performance(bpm=100, humanize=1.0, seed=3))
    moved = np.abs(np.array(detected_onsets(sloppy)) - exact) / RATE
    assert moved.max() > 0.001 and moved.max() < 0.035
    assert np.array_equal(sloppy, render_notes(events_of(tokens), Performance(bpm=100, humanize=1.0, seed=3)))


@pytest.mark.parametrize("tokens", [[24] * 40, list(range(1, 25)) * 3, [13, 17, 20] * 20])
def test_peaks_stay_at_or_below_minus_1_dbfs(tokens):
    loud = render_song(events_of(tokens), effects=Effects(wet=1.0, room_size=1.0),
                       velocities=[127] * len(tokens))
    assert db(np.abs(loud).max()) <= -1.0 + 1e-6
    assert db(np.abs(render_song(events_of(tokens), effects=DRY)).max()) <= -1.0 + 1e-6


def spectrum_share_above(audio, hz):
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    power = np.abs(np.fft.rfft(mono)) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1 / RATE)
    return power[freqs > hz].sum() / power.sum()


def test_low_pass_removes_energy_above_the_cutoff():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, RATE).astype(np.float32)
    dry = apply(noise, RATE, Effects(enabled=False))
    filtered = apply(noise, RATE, Effects(cutoff=1000, wet=0.0))
    assert spectrum_share_above(filtered, 4000) < 0.2 * spectrum_share_above(dry, 4000)
    song_dry = render_song(events_of([20, 22, 24] * 4), effects=DRY)
    song_fx = render_song(events_of([20, 22, 24] * 4), effects=Effects(cutoff=800))
    assert spectrum_share_above(song_fx, 2000) < 0.5 * spectrum_share_above(song_dry, 2000)


def test_reverb_adds_a_tail():
    dry = render_song(events_of([13]), effects=DRY)
    wet = render_song(events_of([13]), effects=Effects(room_size=0.9, wet=0.6))
    assert len(wet) > len(dry) + RATE // 2


def test_output_is_stereo_44k_and_not_silent(tmp_path):
    audio = render_song(events_of([13, 15, 17, 0, 18]))
    assert audio.ndim == 2 and audio.shape[1] == 2
    assert np.sqrt(np.mean(audio ** 2)) > 0.01
    for suffix in (".wav", ".flac", ".ogg"):
        save_audio(tmp_path / f"x{suffix}", audio)
        data, rate = soundfile.read(tmp_path / f"x{suffix}")
        assert rate == 44_100 and abs(len(data) - len(audio)) < 2048


@pytest.mark.parametrize("bad", [Effects(room_size=2), Effects(wet=-0.1), Effects(cutoff=5)])
def test_bad_effect_settings_are_errors(bad):
    with pytest.raises(SynthError, match="out of range"):
        render_song(events_of([13]), effects=bad)


def test_unknown_audio_format_is_an_error(tmp_path):
    with pytest.raises(SynthError, match="expected .wav"):
        save_audio(tmp_path / "x.mp4", np.zeros((10, 2), dtype=np.float32))


# --- lengths: the key is held for the note's length ---------------------------------------


def rms(audio):
    return float(np.sqrt(np.mean(np.square(audio)))) if len(audio) else 0.0


@pytest.mark.parametrize("pitch", [1, 13, 24])
def test_a_long_note_sounds_longer_than_a_short_one(pitch):
    bpm = 120  # a beat is 0.5 s
    short = render_notes([Event(pitch, 2)], Performance(bpm=bpm))  # half a beat
    long = render_notes([Event(pitch, 8)], Performance(bpm=bpm))  # two beats
    window = RATE // 20
    # while both keys are down they sound alike; once the short one is let go its damper
    # falls, and half a second later it is quiet while the long note still rings
    assert rms(short[:window]) == pytest.approx(rms(long[:window]), rel=1e-6)
    late = slice(int(0.6 * RATE), int(0.9 * RATE))
    assert rms(short[late]) < 0.05 * rms(long[late])
    assert rms(long[late]) > 0.003
    assert len(long) - len(short) == pytest.approx(0.75 * RATE, abs=2)


def test_the_sound_follows_each_length():
    # C4 for 1.5 beats, D4 for 0.5, a 2-beat rest: at 60 bpm the key comes up at 1.5 s and 2 s
    audio = render_notes([Event(13, 6), Event(15, 2), Event(0, 8), Event(17, 4)],
                         Performance(bpm=60))
    envelope = [rms(audio[int(t * RATE): int((t + 0.05) * RATE)])
                for t in np.arange(0, 5, 0.05)]
    found = detected_onsets(audio)  # D4 follows C4 legato: only the rest separates onsets
    assert np.allclose(np.array(found) / RATE, [0, 4.0], atol=0.005)
    quiet = [e for t, e in zip(np.arange(0, 5, 0.05), envelope) if 2.35 <= t < 3.95]
    assert max(quiet) < 1e-3  # the rest is silent once the damper is down
    assert envelope[int(1.4 / 0.05)] > 0.005 and envelope[int(1.9 / 0.05)] > 0.005  # held
    assert envelope[int(2.3 / 0.05)] < 0.2 * envelope[int(1.9 / 0.05)]  # let go at 2 s


def test_the_song_ends_when_the_last_release_has_rung_out():
    for events in ([Event(13, 4)], [Event(13, 4), Event(0, 16)], [Event(13, 32)]):
        audio = render_notes(events, Performance(bpm=60))
        beats = sum(e.quarters for e in events) / 4
        assert len(audio) == pytest.approx((beats + 0.25 + 0.05) * RATE, abs=2)


def test_live_effects_bring_the_limiter_down_to_the_ceiling_without_clipping():
    """The limiter's output reaches full scale; the live chain scales it to -1 dBFS rather than
    flattening everything above -1 dBFS against a hard clip."""
    from synth.effects import Stream

    t = np.arange(2 * RATE) / RATE
    loud = (1.5 * np.sin(2 * np.pi * 220 * t) * np.exp(-t)).astype(np.float32)
    chain = Stream(RATE, Effects())
    out = np.concatenate([chain.process(loud[i : i + 256]) for i in range(0, len(loud), 256)])
    assert np.abs(out).max() <= chain.limit
    assert np.mean(np.abs(out) >= chain.limit - 1e-6) < 0.001  # no plateau at the clip
