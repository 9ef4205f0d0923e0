"""Keyboards in, answers out: inputs, outputs, devices, record, live, tempo, the journal and the session MIDI file. Imports synth.learn, synth.sound, synth.music, synth.files, synth.errors."""
