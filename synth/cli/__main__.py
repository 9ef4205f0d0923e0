"""`python -m synth.cli`: the same as the `synth` command."""

from synth.cli import main

main()
