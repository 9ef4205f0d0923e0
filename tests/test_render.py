"""Songs streamed block by block to a file: the same sound as the in-memory render, peaks at the
ceiling, complete files, nothing half-written, and blocks that do not grow with the song."""

import numpy as np
import pytest
import soundfile

from synth import files
from synth.sound import effects, loudness, piano
from synth.sound.render import pcm16, planned_loudness, render_song, stream_song, write_audio
from synth.sound.effects import CEILING_DB, Effects, db
from synth.errors import SynthError
from synth.music.events import Event

DRY = Effects(enabled=False)


def loud_song(n=60, seed=9):
    """Notes that overlap and drive the limiter to full scale."""
    rng = np.random.default_rng(seed)
    return [Event(int(c), int(q)) for c, q in zip(rng.integers(1, 25, n), rng.choice([1, 2, 4], n))]


def streamed(*args, **kwargs):
    blocks = list(stream_song(*args, **kwargs))
    return np.concatenate(blocks) if blocks else np.zeros((0, 2), dtype=np.float32)


def one_pass(events, performance, settings):
    """The song through the chain as one call of each stage over the whole song (what the
    blocks must add up to), at the gain the loudness plan gives it."""
    song = piano.score(events, performance)
    gain = np.float32(loudness.gain_for(planned_loudness(song, events, performance, None,
                                                         settings), settings.loudness))
    frames = song.frames + effects.tail_frames(piano.RATE, settings)
    limiter = effects.Limiter(piano.RATE)
    dry = song.piano.render(frames + limiter.delay + limiter.CHUNK)
    if settings.enabled:
        dry = effects.Lowpass(settings.cutoff, piano.RATE)(dry)
    stereo = np.repeat(dry[None, :], 2, axis=0)
    if settings.enabled:
        stereo = effects.reverb(settings)(stereo, piano.RATE, reset=False)
    stereo *= gain
    out = limiter(stereo)[:, limiter.delay :][:, :frames].T
    return np.concatenate(list(effects._trimmed(iter([out]), frames, song.quiet_from,
                                                piano.RATE)))


@pytest.mark.parametrize("events, settings", [
    (loud_song(), Effects()),
    (loud_song(), Effects(room_size=1.0, wet=1.0, cutoff=2000)),
    (loud_song() + [Event(0, 16)] * 6, Effects()),  # long trailing rests: the tail is trimmed
    (loud_song(20) + [Event(0, 32)] + loud_song(20, 3), Effects()),  # 10 s rest mid-song
    (loud_song(), DRY),
    ([Event(13, 4)], DRY),
])
def test_streamed_blocks_add_up_to_one_pass_over_the_whole_song(events, settings):
    """Tolerance zero: block by block, every stage gives the samples of one call over the
    whole song, and render_song is those blocks."""
    performance = piano.Performance(bpm=200)
    whole = one_pass(events, performance, settings)
    assert np.array_equal(streamed(events, performance, settings), whole)
    assert np.array_equal(render_song(events, performance, settings), whole)


def test_a_song_of_rests_streams_nothing():
    assert streamed([Event(0, 4)] * 3).shape == render_song([Event(0, 4)] * 3).shape == (0, 2)


@pytest.mark.parametrize("settings", [Effects(), Effects(room_size=1.0, wet=1.0), DRY])
def test_streamed_peaks_stay_at_or_below_minus_1_dbfs(settings):
    audio = streamed(loud_song(), piano.Performance(bpm=400), settings, velocities=[127] * 60)
    assert db(np.abs(audio).max()) <= CEILING_DB + 1e-6


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_the_file_is_complete_and_the_right_length(tmp_path, suffix):
    events = loud_song(30)
    whole = render_song(events)
    path = tmp_path / f"song{suffix}"
    write_audio(path, stream_song(events))
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.frames) == (piano.RATE, 2, len(whole))
    if suffix == ".wav":
        assert np.array_equal(soundfile.read(path, dtype="int16")[0], pcm16(whole))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it


@pytest.mark.parametrize("error", [SynthError("broken"), KeyboardInterrupt()])
@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_an_error_mid_write_leaves_nothing_under_the_final_name(tmp_path, error, suffix):
    blocks = stream_song(loud_song())
    written = []

    def failing():
        for block in blocks:
            written.append(len(block))
            if len(written) == 3:
                raise error
            yield block

    with pytest.raises(type(error)):
        write_audio(tmp_path / f"song{suffix}", failing())
    assert written and list(tmp_path.iterdir()) == []


def test_an_existing_file_survives_a_failed_write(tmp_path):
    path = tmp_path / "song.wav"
    path.write_bytes(b"the old song")

    def failing():
        yield np.zeros((100, 2), dtype=np.float32)
        raise SynthError("broken")

    with pytest.raises(SynthError):
        write_audio(path, failing())
    assert path.read_bytes() == b"the old song"


def test_an_exclusive_write_keeps_a_file_that_appears_while_it_runs(tmp_path):
    path = tmp_path / "song.wav"

    def meanwhile():  # another save takes the name between a check and this write's end
        yield np.zeros((100, 2), dtype=np.float32)
        path.write_bytes(b"the other song")
        yield np.zeros((100, 2), dtype=np.float32)

    with pytest.raises(files.NameTaken, match="song.wav exists already"):
        write_audio(path, meanwhile(), exclusive=True)
    assert path.read_bytes() == b"the other song"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left beside it
    write_audio(path, iter([np.zeros((100, 2), dtype=np.float32)]))  # not exclusive: replaced
    assert soundfile.info(str(path)).frames == 100


def test_blocks_and_sounding_voices_do_not_grow_with_the_song(monkeypatch):
    """Memory flat in the song's length, as behaviour: every block the writer sees is at most
    effects.BLOCK frames, and the piano never mixes more voices at once for a long song than
    for a short one (notes join when a block reaches them, and leave when they have rung out)."""
    most = []
    render = piano.Voices.render

    def counting(self, frames):
        out = render(self, frames)
        most.append(len(self.voices))
        assert frames <= effects.BLOCK
        return out

    monkeypatch.setattr(piano.Voices, "render", counting)
    seen = {}
    for n in (40, 1200):
        events = loud_song(n)
        sizes = [len(block) for block in stream_song(events, piano.Performance(bpm=300))]
        assert max(sizes) <= effects.BLOCK
        seen[n] = max(most)
        most.clear()
    assert seen[1200] <= 2 * seen[40]  # a few more by chance, never in proportion to 30x


def test_the_trim_never_holds_more_than_the_tail(monkeypatch):
    """What waits to be trimmed or written is bounded: a song ending in 10 minutes of rests
    stops streaming about 2 s after its sound has died away, with the trimmed length (the
    loudness plan's first pass renders the piano up to its last sound too)."""
    events = [Event(13, 4)] + [Event(0, 16)] * 100  # 100 four-beat rests: 160 s at 150 bpm
    rendered = []
    render = piano.Voices.render

    def counting(self, frames):
        rendered.append(frames)
        return render(self, frames)

    monkeypatch.setattr(piano.Voices, "render", counting)
    audio = streamed(events)
    assert sum(rendered) < 10 * piano.RATE
    assert len(audio) == len(render_song(events))
