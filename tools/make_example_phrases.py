"""Write examples/phrases.mid: the opening of a starter song cut into short phrases with pauses
between them, for trying `synth live --input replay:examples/phrases.mid` without a keyboard."""

from pathlib import Path

import mido

from synth.midi import TICKS_PER_BEAT, write_midi
from synth.notes import REST, class_to_midi
from synth.songs import read_song

ROOT = Path(__file__).parent.parent
SONG = ROOT / "dataset" / "a-lover-of-mild-behavior.txt"
PHRASE = 6  # notes per phrase
PHRASES = 6
PAUSE_BEATS = 10  # silence after each phrase: room for the gap and a 6-note answer


def main() -> None:
    notes = [t for t in read_song(SONG).tokens if t != REST][: PHRASE * PHRASES]
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="phrases for synth live"),
                            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(150))])
    midi.tracks.append(track)
    wait = 0
    for index, token in enumerate(notes):
        pitch = class_to_midi(token)
        track.append(mido.Message("note_on", note=pitch, velocity=85, time=wait))
        track.append(mido.Message("note_off", note=pitch, time=TICKS_PER_BEAT * 9 // 10))
        wait = TICKS_PER_BEAT // 10
        if (index + 1) % PHRASE == 0:
            wait += PAUSE_BEATS * TICKS_PER_BEAT
    write_midi(ROOT / "examples" / "phrases.mid", midi)
    print(f"wrote examples/phrases.mid: {PHRASES} phrases of {PHRASE} notes from {SONG.name}")


if __name__ == "__main__":
    main()
