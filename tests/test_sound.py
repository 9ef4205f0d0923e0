"""The piano, the effects and the level: measurable properties of audio the tests make."""

import numpy as np
import pyloudnorm
import pytest
import soundfile
from scipy.signal import resample_poly

from synth.sound import effects as fx, loudness, piano
from synth.sound.render import REFERENCE_PHRASE, live_gain, render_song, save_audio
from synth.sound.effects import Effects, Stream, apply, db
from synth.errors import SynthError
from synth.music.events import Event, events_of
from synth.sound.piano import RATE, Performance, render_notes

DRY = Effects(enabled=False)
METER = pyloudnorm.Meter(RATE)


def lufs(audio):
    return METER.integrated_loudness(np.asarray(audio, dtype=np.float64))


def true_peak_db(audio):
    """The 4x oversampled peak (BS.1770's true peak)."""
    return db(float(np.abs(resample_poly(np.asarray(audio, np.float64), 4, 1, axis=0)).max()))


def crest_db(audio):
    return db(float(np.abs(audio).max()) / float(np.sqrt(np.mean(np.square(audio)))))


def centroid(audio):
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    power = np.abs(np.fft.rfft(mono * np.hanning(len(mono)))) ** 2
    return float((power * np.fft.rfftfreq(len(mono), 1 / RATE)).sum() / power.sum())


def melody(n=120, seed=4):
    """A melody with rests, lengths of 1/4 to 8 beats and velocities 25-127."""
    rng = np.random.default_rng(seed)
    events = [Event(int(c), int(q)) for c, q in
              zip(rng.integers(0, 25, n), rng.choice([1, 2, 2, 4, 4, 4, 6, 8, 16, 32], n))]
    return events, [int(v) for v in rng.integers(25, 128, n)]


def detected_onsets(audio):
    """Frames where a stroke begins: the 5 ms energy jumps 12 dB above the 20 ms before it and
    reaches a tenth of the loudest; placed where the sound first passes a tenth of its peak."""
    hop = 220
    mono = np.abs(audio if audio.ndim == 1 else audio.mean(axis=1))
    mono = np.concatenate([np.zeros(4 * hop, mono.dtype), mono])  # a stroke at frame 0 too
    env = np.sqrt(np.square(mono[: len(mono) // hop * hop]).reshape(-1, hop).mean(axis=1))
    found = []
    for i in range(4, len(env)):
        if env[i] > 0.1 * env.max() and env[i] > 4 * env[i - 4 : i].max() + 1e-9:
            if found and i * hop - found[-1] < 0.05 * RATE:
                continue
            window = mono[(i - 1) * hop : (i + 3) * hop]
            found.append((i - 5) * hop + int(np.argmax(window > 0.1 * window.max())))
    return found


@pytest.mark.parametrize("bpm,rests", [(60, 1), (150, 1), (300, 2)])
def test_onsets_land_on_the_beat_grid_within_5_ms(bpm, rests):
    gap = [0] * rests
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


def max_jump_after_release(audio, key_up, until):
    """The largest sample-to-sample step after the key comes up, against the largest while it
    was held just before: a hard cut would jump by the note's whole amplitude."""
    held = audio[key_up - int(0.02 * RATE) : key_up]
    release = audio[key_up : until]
    return np.max(np.abs(np.diff(release))), np.max(np.abs(np.diff(held)))


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
        after, before = max_jump_after_release(audio, key_up,
                                               min(key_up + int(0.5 * RATE), next_onset - 1))
        assert after <= 1.5 * before
    assert abs(audio[-1]) < 1e-4


def test_a_ten_second_held_note_still_sounds_and_releases_without_a_click(monkeypatch):
    """8 beats at 48 bpm: the key is down for 10 s and the recording rings to the end. The
    damper fades the string with no step; the release's own sound (a thump, louder than what
    is left of the string by then) starts from silence."""
    for pitch in (1, 13, 24):
        events = [Event(pitch, 32), Event(0, 8)]
        key_up = 10 * RATE
        song = render_song(events, Performance(bpm=48))
        end = song[key_up - RATE // 10 : key_up]
        assert db(float(np.sqrt(np.mean(np.square(end))))) > -60.0
        after = song[key_up + int(0.6 * RATE) :]  # damper and release done (or trimmed away)
        assert not len(after) or db(float(np.abs(after).max())) < db(float(np.abs(end).max())) - 10
        with_release = render_notes(events, Performance(bpm=48))
        with monkeypatch.context() as patch:
            patch.setattr(piano, "RELEASE_LEVEL", 0.0)
            string = render_notes(events, Performance(bpm=48))
        after, before = max_jump_after_release(string, key_up, key_up + int(0.5 * RATE))
        assert after <= 1.5 * before
        thump = (with_release - string)[key_up : key_up + int(0.5 * RATE)]
        assert np.abs(thump[:10]).max() < 0.01 * np.abs(thump).max()


def test_the_damper_is_slower_on_lower_strings():
    assert piano.damper_frames(48) > piano.damper_frames(60) > piano.damper_frames(71)
    assert 0.1 * RATE <= piano.damper_frames(71) and piano.damper_frames(48) <= 0.3 * RATE


def test_the_key_release_sounds(monkeypatch):
    """After the damper has stopped the string, what is heard is the release's own sound."""
    events = [Event(13, 4), Event(0, 8)]
    with_release = render_notes(events, Performance(bpm=60))
    monkeypatch.setattr(piano, "RELEASE_LEVEL", 0.0)
    without = render_notes(events, Performance(bpm=60))
    late = slice(int(1.25 * RATE), int(1.45 * RATE))  # after the 0.2 s damper of C4
    assert np.sqrt(np.mean(np.square(with_release[late]))) > 10 * np.sqrt(
        np.mean(np.square(without[late])) + 1e-20)
    assert np.array_equal(with_release[: RATE], without[: RATE])


def test_a_rest_is_silence_after_the_release():
    audio = render_notes(events_of([13, 0, 0]), Performance(bpm=60))
    assert np.abs(audio[int(1.55 * RATE) : 3 * RATE]).max() < 1e-4  # damper and release over
    assert np.abs(audio[: RATE]).max() > 0.1


def test_velocity_scales_loudness():
    soft = render_notes(events_of([13]), velocities=[40])
    loud = render_notes(events_of([13]), velocities=[120])
    assert np.abs(loud).max() > 3 * np.abs(soft).max()


@pytest.mark.parametrize("pitch", [1, 8, 13, 20, 24])
def test_louder_is_brighter(pitch):
    centroids = [centroid(render_notes([Event(pitch)], Performance(bpm=60), [v])[: RATE // 2])
                 for v in (30, 60, 90, 127)]
    assert all(a < b for a, b in zip(centroids, centroids[1:])), centroids


def test_neighbouring_keys_have_no_seam():
    """Keys played from two different recordings (every third key) differ from each other as
    little as keys played from one: level within 1.5 dB, brightness rising smoothly."""
    for low in range(48, 71):
        a, b = (piano.sample(key)[: RATE // 2].astype(np.float64) for key in (low, low + 1))
        step = db(float(np.sqrt(np.mean(b ** 2)))) - db(float(np.sqrt(np.mean(a ** 2))))
        assert abs(step) < 1.5, (low, step)
        assert 0.85 < centroid(b) / centroid(a) < 1.2, low


def test_humanize_moves_notes_a_little_and_is_seeded():
    tokens = [13, 0, 17, 0, 20, 0, 22]
    exact = detected_onsets(render_notes(events_of(tokens), Performance(bpm=100)))
    sloppy = render_notes(events_of(tokens), Performance(bpm=100, humanize=1.0, seed=3))
    moved = np.abs(np.array(detected_onsets(sloppy)) - exact) / RATE
    assert moved.max() > 0.001 and moved.max() < 0.035
    assert np.array_equal(sloppy, render_notes(events_of(tokens),
                                               Performance(bpm=100, humanize=1.0, seed=3)))


# --- the level: loudness, true peak, crest factor ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("settings", [Effects(), DRY, Effects(room_size=0.9, wet=0.5, cutoff=1500),
                                      Effects(loudness=-23.0)])
@pytest.mark.parametrize("bpm", [60, 150, 300])
def test_songs_come_out_at_the_loudness_asked_for(settings, bpm):
    events, velocities = melody()
    audio = render_song(events, Performance(bpm=bpm), settings, velocities)
    assert lufs(audio) == pytest.approx(settings.loudness, abs=1.0)
    assert true_peak_db(audio) <= -1.0


@pytest.mark.parametrize("velocity", [20, 127])
def test_soft_and_loud_playing_both_reach_the_level(velocity):
    events = events_of([13, 17, 20, 24, 20, 17, 13, 0, 1, 5, 8, 13])
    audio = render_song(events, velocities=[velocity] * len(events))
    assert lufs(audio) == pytest.approx(-16.0, abs=1.0)
    assert true_peak_db(audio) <= -1.0


@pytest.mark.parametrize("tokens", [[24] * 40, list(range(1, 25)) * 3, [13, 17, 20] * 20])
def test_true_peaks_stay_at_or_below_minus_1_dbtp(tokens):
    for settings in (Effects(wet=1.0, room_size=1.0), DRY, Effects(loudness=-6.0)):
        loud = render_song(events_of(tokens), Performance(bpm=400), settings,
                           velocities=[127] * len(tokens))
        assert true_peak_db(loud) <= -1.0


def test_a_melody_with_varied_velocities_keeps_its_dynamics():
    """Crest factor (peak over RMS) of 14 dB or more: the limiter only touches the last peaks."""
    events, velocities = melody()
    audio = render_song(events, Performance(bpm=120), Effects(), velocities)
    assert crest_db(audio) >= 14.0
    dry_crest = crest_db(render_notes(events, Performance(bpm=120), velocities))
    assert crest_db(audio) > dry_crest - 3.0  # the limiter took off less than 3 dB


def test_the_loudness_plan_agrees_with_pyloudnorm_before_the_limiter(monkeypatch):
    """The first pass's estimate against the measured loudness of the chain without the
    limiter's work (its ceiling far away). (At room size 1 it comes out 0.7-0.9 LU quieter
    than planned: within the 1 LU of the test above, not within this one.)"""
    monkeypatch.setattr(fx, "LIMIT_DB", 40.0)
    monkeypatch.setattr(fx, "LIMIT", np.float32(100.0))
    events, velocities = melody(60, seed=8)
    for settings in (Effects(), DRY, Effects(room_size=0.7, wet=0.5, cutoff=800)):
        audio = render_song(events, Performance(bpm=100), settings, velocities)
        assert lufs(audio) == pytest.approx(-16.0, abs=0.5)


def test_k_weighting_is_pyloudnorm_s():
    from scipy.signal import freqz  # scipy comes with pyloudnorm

    freqs = np.linspace(10, 20_000, 400)
    ours = loudness.k_weighting(freqs, RATE)
    theirs = np.ones_like(freqs)
    for stage in METER._filters.values():
        theirs *= np.abs(freqz(stage.b, stage.a, worN=freqs, fs=RATE)[1]) ** 2
    assert np.allclose(10 * np.log10(ours), 10 * np.log10(theirs), atol=0.01)


def test_the_gated_loudness_is_pyloudnorm_s_on_k_weighted_audio():
    """gated() on the sub-block energies of K-weighted audio equals pyloudnorm's integrated
    loudness: noise with a silence and a quiet passage (both gates at work)."""
    rng = np.random.default_rng(1)
    parts = [rng.normal(0, 0.1, 3 * RATE), np.zeros(RATE), rng.normal(0, 0.003, 2 * RATE),
             rng.normal(0, 0.05, 4 * RATE)]
    mono = np.concatenate(parts)
    weighted = mono.copy()  # K-weighted with pyloudnorm's own filters
    for stage in pyloudnorm.Meter(RATE)._filters.values():
        weighted = stage.apply_filter(weighted)
    step = RATE // 10
    energies = np.square(weighted[: len(weighted) // step * step]).reshape(-1, step).sum(axis=1)
    theirs = pyloudnorm.Meter(RATE).integrated_loudness(mono)
    assert loudness.gated(energies, step) == pytest.approx(theirs, abs=0.05)


def test_live_play_is_at_the_level_of_a_song_of_the_same_touch():
    """The live chain (effects.Stream, 256-frame blocks) with its calibrated gain, on the
    reference phrase and on another phrase at the same touch."""
    for events in (REFERENCE_PHRASE, events_of([1, 0, 8, 13, 12, 13, 17, 0, 20, 24, 22, 20])):
        dry = render_notes(events, Performance(bpm=120))
        dry = np.concatenate([dry, np.zeros(RATE, np.float32)])
        chain = Stream(RATE, Effects(), live_gain(Effects()))
        out = np.concatenate([chain.process(dry[i : i + 256]) for i in range(0, len(dry), 256)])
        assert len(out) == len(dry)
        song = render_song(events, Performance(bpm=120))
        assert lufs(out) == pytest.approx(lufs(song), abs=1.0)
        assert true_peak_db(out) <= -1.0


# --- the low-pass and the reverb ------------------------------------------------------------


def spectrum_share_above(audio, hz):
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    power = np.abs(np.fft.rfft(mono)) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1 / RATE)
    return power[freqs > hz].sum() / power.sum()


def energy_above(audio, hz):
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    power = np.abs(np.fft.rfft(mono)) ** 2
    return float(power[np.fft.rfftfreq(len(mono), 1 / RATE) > hz].sum())


@pytest.mark.parametrize("cutoff", [Effects().cutoff, 2000.0, 800.0])
def test_the_low_pass_takes_20_db_off_above_twice_its_cutoff(cutoff):
    events, velocities = melody(40, seed=2)
    dry = render_song(events, effects=DRY, velocities=velocities)
    wet = render_song(events, effects=Effects(cutoff=cutoff), velocities=velocities)
    assert lufs(wet) == pytest.approx(lufs(dry), abs=1.0)  # the same level, compared fairly
    assert 10 * np.log10(energy_above(wet, 2 * cutoff) / energy_above(dry, 2 * cutoff)) <= -20


def test_the_low_pass_is_24_db_per_octave_on_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, 2 * RATE).astype(np.float32)
    filtered = fx.Lowpass(1000.0, RATE)(noise)
    power = np.abs(np.fft.rfft(filtered)) ** 2 / np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / RATE)

    def level(hz):
        return 10 * np.log10(power[(freqs > hz / 1.1) & (freqs < hz * 1.1)].mean())

    assert level(4000) - level(2000) == pytest.approx(-24, abs=3)
    assert abs(level(200)) < 1.0


def test_low_pass_removes_energy_above_the_cutoff():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, RATE).astype(np.float32)
    dry = apply(noise, RATE, Effects(enabled=False))
    filtered = apply(noise, RATE, Effects(cutoff=1000, wet=0.0))
    assert spectrum_share_above(filtered, 4000) < 0.01 * spectrum_share_above(dry, 4000)


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


@pytest.mark.parametrize("bad", [Effects(room_size=2), Effects(wet=-0.1), Effects(cutoff=5),
                                 Effects(loudness=0.0), Effects(loudness=-60.0),
                                 Effects(loudness=float("nan"))])
def test_bad_effect_settings_are_errors(bad):
    with pytest.raises(SynthError, match="out of range"):
        render_song(events_of([13]), effects=bad)


def test_unknown_audio_format_is_an_error(tmp_path):
    with pytest.raises(SynthError, match="expected .wav"):
        save_audio(tmp_path / "x.mp4", np.zeros((10, 2), dtype=np.float32))


def test_the_samples_ship_with_their_licence_and_stay_small():
    folder = piano.SAMPLES
    licence = (folder / "LICENSE").read_text()
    assert "Alexander Holm" in licence and "CC BY 3.0" in licence
    keys = sorted(int(p.stem) for p in folder.glob("*.flac"))
    assert keys == list(range(48, 72))
    assert sorted(int(p.stem) for p in (folder / "release").glob("*.flac")) == keys
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 15e6
    for path in folder.rglob("*.flac"):
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels) == (RATE, 1)


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
    # falls, and later it is quiet (but for the release's own sound) while the long one rings
    assert rms(short[:window]) == pytest.approx(rms(long[:window]), rel=1e-6)
    late = slice(int(0.6 * RATE), int(0.9 * RATE))
    assert rms(short[late]) < 0.2 * rms(long[late])
    assert rms(long[late]) > 0.003
    assert len(long) - len(short) == pytest.approx(0.75 * RATE, abs=2)


def test_the_sound_follows_each_length():
    # C4 for 1.5 beats, D4 for 0.5, a 2-beat rest: at 60 bpm the key comes up at 1.5 s and 2 s
    audio = render_notes([Event(13, 6), Event(15, 2), Event(0, 8), Event(17, 4)],
                         Performance(bpm=60))
    envelope = [rms(audio[int(t * RATE): int((t + 0.05) * RATE)])
                for t in np.arange(0, 5, 0.05)]
    found = detected_onsets(audio)
    assert np.allclose(np.array(found) / RATE, [0, 1.5, 4.0], atol=0.005)
    quiet = [e for t, e in zip(np.arange(0, 5, 0.05), envelope) if 2.55 <= t < 3.95]
    assert max(quiet) < 1e-4  # the rest is silent once the damper and the release are done
    assert envelope[int(1.4 / 0.05)] > 0.005 and envelope[int(1.9 / 0.05)] > 0.005  # held
    assert envelope[int(2.3 / 0.05)] < 0.2 * envelope[int(1.9 / 0.05)]  # let go at 2 s


def test_the_song_ends_when_the_last_release_has_rung_out():
    for events in ([Event(13, 4)], [Event(13, 4), Event(0, 16)], [Event(13, 32)]):
        audio = render_notes(events, Performance(bpm=60))
        beats = sum(e.quarters for e in events) / 4
        assert len(audio) == pytest.approx((beats + piano.TAIL_SECONDS + 0.05) * RATE, abs=2)


def test_live_s_piano_starts_with_each_key_s_first_seconds_and_grows_without_a_seam():
    """Live play starts with 2 s of every key and gets the rest on a thread; a key held
    across the switch sounds exactly as it does in a song."""
    events = [Event(13, 24)]  # 6 beats at 60 bpm: 6 s, past the first 2 s
    song = render_notes(events, Performance(bpm=60))
    piano._decoded.clear()  # nothing decoded yet in this process: the bank starts short
    piano._complete.clear()
    live = piano.Voices()
    assert len(live.bank[60]) < 3 * RATE or live.grown.is_set()
    live.down(60, piano.DEFAULT_VELOCITY, 0)
    live.up(60, 6 * RATE)
    head = live.render(RATE)
    assert live.grown.wait(30)
    rest = np.concatenate([live.render(RATE) for _ in range(len(song) // RATE)])
    both = np.concatenate([head, rest])[: len(song)]
    assert np.array_equal(both, song)
