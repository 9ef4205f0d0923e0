"""Write examples/phrases.mid: the opening of a starter song, in its own rhythm, cut into short
phrases with pauses between them, for trying `synth live --input replay:examples/phrases.mid`
without a keyboard."""

from pathlib import Path

import mido

from synth.music.events import QUARTERS_PER_BEAT
from synth.music.midi import TICKS_PER_BEAT, write_midi
from synth.music.notes import class_to_midi
from synth.music.songs import read_song

ROOT = Path(__file__).parent.parent
SONG = ROOT / "dataset" / "a-lover-of-mild-behavior.txt"
PHRASE = 6  # notes per phrase
PHRASES = 6
PAUSE_BEATS = 10  # silence after each phrase: room for the gap and a 6-note answer


def main() -> None:
    notes = [e for e in read_song(SONG).events if not e.is_rest][: PHRASE * PHRASES]
    quarter = TICKS_PER_BEAT // QUARTERS_PER_BEAT
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="phrases for synth live"),
                            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(150))])
    midi.tracks.append(track)
    wait = 0
    for index, event in enumerate(notes):
        pitch = class_to_midi(event.cls)
        held = event.quarters * quarter * 9 // 10  # a little air between notes, as played
        track.append(mido.Message("note_on", note=pitch, velocity=85, time=wait))
        track.append(mido.Message("note_off", note=pitch, time=held))
        wait = event.quarters * quarter - held
        if (index + 1) % PHRASE == 0:
            wait += PAUSE_BEATS * TICKS_PER_BEAT
    write_midi(ROOT / "examples" / "phrases.mid", midi)
    print(f"wrote examples/phrases.mid: {PHRASES} phrases of {PHRASE} notes from {SONG.name}")


if __name__ == "__main__":
    main()
