"""The studio's Web Audio piano against synth's own: a phrase of varied touch rendered in
headless Chromium through the page's piano (static/piano.js, in an OfflineAudioContext) and by
Python through the chain of `synth live` (piano.Voices, effects.Stream at audio.live_gain)
has the same loudness and brightness, and the page's low-pass empties the octaves above it."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from browser import browser

pytestmark = pytest.mark.slow
RATE = 44_100
BPM = 120.0
PHRASE = "C4:1 D4:0.5 E4:0.5 F4:2 G4:1 0:1 A4:1 B4:0.5 G4:0.5 E4:3 C4:1 G3:1 E3:2 C3:1"
TOUCH = [64, 112, 80, 120, 70, 90, 100, 50, 96, 84, 110, 60, 100]  # one per note
TAIL = 2.0  # seconds rendered after the last key comes up


driver = pytest.fixture(scope="module")(browser)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from synth.studio.server import Background

    with Background(tmp_path_factory.mktemp("studio")) as running:
        yield running


def phrase():
    """The phrase's notes: (MIDI pitch, velocity, seconds down, seconds up), and its length."""
    from synth.music.events import parse_events, starts
    from synth.music.notes import class_to_midi

    events = parse_events(PHRASE)
    quarter = 60.0 / BPM / 4
    notes, touch = [], iter(TOUCH)
    for event, start in zip(events, starts(events)):
        if not event.is_rest:
            notes.append((class_to_midi(event.cls), next(touch), start * quarter,
                          (start + event.quarters) * quarter))
    return events, notes, max(up for *_, up in notes) + TAIL


def browser_render(driver, studio, dry: bool) -> np.ndarray:
    """The phrase through the page's piano, stereo (frames, 2)."""
    _, notes, seconds = phrase()
    driver.get(studio.url)
    driver.set_script_timeout(120)
    data = driver.execute_async_script("""
        const [notes, seconds, dry, done] = arguments;
        import("/static/piano.js").then((m) => m.renderPhrase(notes, seconds, dry))
          .then(([left, right]) => {
            const both = new Float32Array(left.length * 2);
            both.set(left); both.set(right, left.length);
            let text = "";
            const bytes = new Uint8Array(both.buffer);
            for (let i = 0; i < bytes.length; i += 32768)
              text += String.fromCharCode.apply(null, bytes.subarray(i, i + 32768));
            done(btoa(text));
          }).catch((e) => done("error: " + e));
        """, [{"midi": m, "velocity": v, "at": down, "seconds": up - down}
              for m, v, down, up in notes], seconds, dry)
    assert not data.startswith("error"), data
    audio = np.frombuffer(base64.b64decode(data), dtype=np.float32)
    return audio.reshape(2, -1).T


def python_render() -> np.ndarray:
    """The phrase as `synth live` plays it: the piano's voices through effects.Stream."""
    from synth.sound.render import live_gain
    from synth.sound.effects import Effects, Stream
    from synth.sound.piano import Performance, score

    events, _, seconds = phrase()
    song = score(events, Performance(bpm=BPM), touch_per_event(events))
    chain = Stream(RATE, Effects(), live_gain(Effects()))
    frames, block = int(seconds * RATE), 512
    out = [chain.process(song.piano.render(block)) for _ in range(0, frames, block)]
    return np.concatenate(out)[:frames]


def touch_per_event(events) -> list[int]:
    """The velocities score() takes: one per event, rests included."""
    touch = iter(TOUCH)
    return [90 if event.is_rest else next(touch) for event in events]


def loudness(audio: np.ndarray) -> float:
    import pyloudnorm

    return pyloudnorm.Meter(RATE).integrated_loudness(audio.astype(np.float64))


def centroid(audio: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(audio.mean(axis=1))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    return float((freqs * power).sum() / power.sum())


def energy_above(audio: np.ndarray, hz: float) -> float:
    power = np.abs(np.fft.rfft(audio.mean(axis=1))) ** 2
    return float(power[np.fft.rfftfreq(len(audio), 1 / RATE) > hz].sum())


@pytest.fixture(scope="module")
def renders(driver, studio):
    return browser_render(driver, studio, dry=False), browser_render(driver, studio, dry=True)


def test_the_page_renders_the_phrase_with_sound(renders):
    wet, dry = renders
    _, _, seconds = phrase()
    assert wet.shape == dry.shape == (int(np.ceil(seconds * RATE)), 2)
    assert np.abs(wet).max() > 0.05 and np.abs(dry).max() > 0.05
    assert np.abs(wet).max() <= 1.0


def test_the_page_sounds_as_loud_and_as_bright_as_synth_live(renders):
    wet, _ = renders
    ours = python_render()
    page, python = loudness(wet), loudness(ours)
    assert abs(page - python) <= 1.5, f"the page at {page:.2f} LUFS, synth live at {python:.2f}"
    page, python = centroid(wet), centroid(ours)
    assert abs(page - python) <= 0.15 * python, (
        f"spectral centroid: the page {page:.0f} Hz, synth live {python:.0f} Hz")


def test_the_pages_low_pass_empties_the_octaves_above_it(renders):
    from synth.sound.effects import Effects

    wet, dry = renders
    above = 2 * Effects().cutoff
    drop = 10 * np.log10(energy_above(wet, above) / energy_above(dry, above))
    assert drop <= -20, f"above {above:g} Hz the page's chain is only {-drop:.1f} dB down"
