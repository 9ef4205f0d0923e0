"""The optional C extension synth.learn._ppmcore (the memory's per-step work, see synth/learn/memory.py);
everything else about the package is in pyproject.toml. Without a compiler the install goes on
without it (optional=True) and synth runs the same NumPy code, only slower."""

import sys

from setuptools import Extension, setup

# No fused multiply-add: the C code rounds each operation as NumPy does, so both paths agree.
FLAGS = [] if sys.platform == "win32" else ["-ffp-contract=off"]

setup(ext_modules=[Extension("synth.learn._ppmcore", ["synth/learn/_ppmcore.c"], optional=True,
                             extra_compile_args=FLAGS)])
