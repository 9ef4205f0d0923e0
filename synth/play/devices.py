"""Which MIDI ports and audio outputs this machine has, asked without ALSA noise or crashes."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from synth.errors import SynthError


@dataclass
class Devices:
    """What was found; `problems` says why a kind of device could not be listed at all."""

    midi_inputs: list[str] = field(default_factory=list)
    midi_outputs: list[str] = field(default_factory=list)
    audio_outputs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence C libraries (ALSA, JACK) that print straight to file descriptor 2."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured in tests): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _ask(what: str, query: Callable[[], list[str]], problems: list[str] | None) -> list[str]:
    try:
        with quiet_stderr():
            return sorted(dict.fromkeys(str(name) for name in query()))
    except Exception as exc:  # rtmidi raises its own SystemError when ALSA has no sequencer
        first_line = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        if problems is not None:
            problems.append(f"{what}: {first_line}")
        return []


def midi_input_names(problems: list[str] | None = None) -> list[str]:
    import mido

    return _ask("MIDI inputs", mido.get_input_names, problems)


def midi_output_names(problems: list[str] | None = None) -> list[str]:
    import mido

    return _ask("MIDI outputs", mido.get_output_names, problems)


def audio_output_names(problems: list[str] | None = None) -> list[str]:
    def query() -> list[str]:
        from pedalboard.io import AudioStream

        return list(AudioStream.output_device_names)

    return _ask("audio outputs", query, problems)


def list_devices() -> Devices:
    """MIDI inputs, MIDI outputs and audio outputs of this machine."""
    found = Devices()
    found.midi_inputs = midi_input_names(found.problems)
    found.midi_outputs = midi_output_names(found.problems)
    found.audio_outputs = audio_output_names(found.problems)
    return found


def choose(spec: str | None, names: list[str], kind: str, others: str,
           problems: list[str] | None = None) -> str:
    """The device called `spec` (an exact name, else the one name containing it, any case),
    or the first one found when `spec` is None. Errors name what was found and, in `others`,
    what to use instead; `problems` says why nothing could be listed."""
    if not names:
        why = f" ({problems[0].split(': ', 1)[-1].strip().rstrip('.')})" if problems else ""
        raise SynthError(f"no {kind} found{why}: use {others}")
    if spec is None or spec in names:
        return spec or names[0]
    matches = [n for n in names if spec.lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise SynthError(f"{kind} {spec!r} matches several: {', '.join(map(repr, matches))}; "
                         "give more of the name")
    found = ", ".join(repr(n) for n in names)
    raise SynthError(f"no {kind} called {spec!r} (found: {found}); use one of those or {others}")
