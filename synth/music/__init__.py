"""What a song is: notes, events, song files, MIDI in and out, import, the piano roll. Imports only synth.files and synth.errors (and NumPy, mido, matplotlib)."""
