"""The piano, effects, loudness and rendering to audio files. Imports synth.music, synth.files, synth.errors (and NumPy, pedalboard, soundfile)."""
