"""Keyboard inputs for `record` and `live`: a MIDI port, the computer keyboard, or a replayed
MIDI file. All three deliver the same thing: timed MIDI messages on a queue.

Each input runs on its own thread (or rtmidi's callback thread) and stamps every message with
`time.monotonic()` as it arrives, so the command reading the queue sees true timing even when
it is busy. An `KeyEvent` without a message means the player asked to stop (Enter) or the replayed
file ended.
"""

from __future__ import annotations

import os
import queue
import select
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import mido

from synth.play import devices
from synth.errors import SynthError
from synth.music.midi import DRUM_CHANNEL, read_midi
from synth.music.notes import midi_name
from synth.sound.piano import DEFAULT_VELOCITY

REPLAY_PREFIX = "replay:"
KEYS = "keys"
# The tracker layout: white keys on a letter row, black keys on the row above it.
KEY_ROWS = {
    "zsxdcvgbhnjm": 48,  # C3 ... B3
    "q2w3er5t6y7u": 60,  # C4 ... B4
}
KEY_PITCHES = {key: base + i for row, base in KEY_ROWS.items() for i, key in enumerate(row)}
ENTER = ("\n", "\r")
OTHER_INPUTS = ("--input keys (the computer keyboard) or --input replay:FILE.mid "
                "(play a MIDI file in as if it were a keyboard)")


@dataclass(frozen=True)
class KeyEvent:
    """A message from the keyboard at `time` (time.monotonic() seconds); no message = stop."""

    time: float
    message: mido.Message | None = None
    reason: str = ""

    @property
    def is_stop(self) -> bool:
        return self.message is None


def is_press(msg: mido.Message | None) -> bool:
    return msg is not None and msg.type == "note_on" and msg.velocity > 0


def is_release(msg: mido.Message | None) -> bool:
    return msg is not None and (msg.type == "note_off" or
                                (msg.type == "note_on" and msg.velocity == 0))


class Input:
    """Base of every input: a queue of events, started and closed by the command."""

    description = "input"

    def __init__(self) -> None:
        self.events: queue.Queue[KeyEvent] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Begin delivering events (a replay starts playing now)."""

    def get(self, timeout: float | None) -> KeyEvent | None:
        """The next event, or None if nothing came within `timeout` seconds."""
        try:
            return self.events.get(timeout=None if timeout is None else max(timeout, 0.0))
        except queue.Empty:
            return None

    def put(self, message: mido.Message | None, when: float | None = None,
            reason: str = "") -> None:
        self.events.put(KeyEvent(time.monotonic() if when is None else when, message, reason))

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=1.0)

    def _spawn(self, target) -> None:
        thread = threading.Thread(target=target, daemon=True, name=type(self).__name__)
        self._threads.append(thread)
        thread.start()


class ReplayInput(Input):
    """A MIDI file played into the command in real time, as if someone were playing it."""

    def __init__(self, path: Path, speed: float = 1.0):
        super().__init__()
        if not 0.1 <= speed <= 100:
            raise SynthError(f"--speed {speed:g} is out of range: expected 0.1-100")
        self.path = Path(path)
        self.speed = speed
        midi = read_midi(self.path)
        try:
            self.timeline = _playable(midi)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            raise SynthError(f"{self.path}: not a usable MIDI file ({exc})") from None
        if not any(is_press(msg) for _, msg in self.timeline):
            raise SynthError(f"{self.path}: holds no notes to replay "
                             "(drums on channel 10 are ignored)")
        self.description = f"replay of {self.path}" + (f" at {speed:g}x" if speed != 1 else "")
        self.length = self.timeline[-1][0] / speed

    def start(self) -> None:
        self._spawn(self._play)
        watch_enter(self)

    def _play(self) -> None:
        begin = time.monotonic()
        for seconds, msg in self.timeline:
            due = begin + seconds / self.speed
            if self._stop.wait(max(due - time.monotonic(), 0.0)):
                return
            self.put(msg, when=due)
        self.put(None, reason="end of the replayed file")


def _playable(midi: mido.MidiFile) -> list[tuple[float, mido.Message]]:
    """The file's channel messages (drums left out) at their times in seconds."""
    timeline = []
    seconds = 0.0
    for msg in midi:  # mido merges the tracks and applies tempo changes
        seconds += msg.time
        if msg.is_meta or not hasattr(msg, "channel") or msg.channel == DRUM_CHANNEL:
            continue
        timeline.append((seconds, msg.copy(time=0)))
    return timeline


class PortInput(Input):
    """A MIDI keyboard on a port, read through python-rtmidi's callback thread."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.description = f"MIDI input {name}"
        self._port = None

    def start(self) -> None:
        try:
            with devices.quiet_stderr():
                self._port = mido.open_input(self.name, callback=self._receive)
        except Exception as exc:  # rtmidi raises SystemError, IOError, ...
            raise SynthError(f"MIDI input {self.name!r} cannot be opened: "
                             f"{str(exc).strip() or type(exc).__name__}") from None
        watch_enter(self)

    def _receive(self, msg: mido.Message) -> None:
        if hasattr(msg, "channel") and msg.channel != DRUM_CHANNEL:  # no clock or sensing
            self.put(msg)

    def close(self) -> None:
        super().close()
        if self._port is not None:
            self._port.close()
            self._port = None


def watch_enter(source: Input) -> None:
    """Let Enter on the terminal stop `source` (for inputs that do not read the terminal)."""
    stream = sys.stdin
    if stream is None or stream.closed:
        return

    def watch() -> None:
        try:
            while not source._stop.is_set():
                line = stream.readline()
                if not line:  # end of input: nobody can press Enter, stop watching
                    return
                source.put(None, reason="Enter")
        except (OSError, ValueError):
            return

    thread = threading.Thread(target=watch, daemon=True, name="enter")
    thread.start()  # never joined: it may sit in readline() until the process ends


ESC = 0x1B
KEY_TIMEOUT = 0.05  # seconds: an Escape with nothing after it this long was the Escape key


def key_presses(data: bytes) -> tuple[list[str], bytes]:
    """The keys in bytes read from a terminal, escape sequences left out whole: arrows and
    function keys (ESC [ ... final byte, ESC O X) and Alt+key (ESC X). Returns the keys
    (lowercase) and the start of a sequence cut off at the end of `data`, which the next read
    completes."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        byte = data[i]
        if byte != ESC:
            if byte < 0x80:  # not one of the letter rows: UTF-8 text is nobody's key
                keys.append(chr(byte).lower())
            i += 1
            continue
        if i + 1 == len(data):
            return keys, data[i:]
        kind = data[i + 1]
        if kind == ord("["):  # CSI: parameters and intermediates, then a byte 0x40-0x7E
            end = next((j for j in range(i + 2, len(data)) if 0x40 <= data[j] <= 0x7E), None)
            if end is None:
                return keys, data[i:]
            i = end + 1
        elif kind == ord("O"):  # SS3: one byte more (F1-F4, arrows in application mode)
            if i + 2 == len(data):
                return keys, data[i:]
            i += 3
        elif kind == ESC:  # the Escape key, then another sequence
            i += 1
        else:  # Alt+key
            i += 2
    return keys, b""


class KeysInput(Input):
    """The computer keyboard as two octaves. A terminal reports no key-up, so every press is
    a strike: the note is released by the next press or after `hold` seconds. Arrows,
    function keys and other escape sequences are read whole and ignored."""

    description = "computer keyboard"

    def __init__(self, hold: float = 0.4, velocity: int = DEFAULT_VELOCITY,
                 terminal: int | None = None):
        super().__init__()
        if terminal is None and not sys.stdin.isatty():
            raise SynthError("--input keys needs a terminal to read keys from; use "
                             "--input replay:FILE.mid when there is none")
        self.terminal = terminal  # a terminal's file descriptor; None = standard input
        self.hold = hold
        self.velocity = velocity
        self._saved = None

    def _fd(self) -> int:
        return sys.stdin.fileno() if self.terminal is None else self.terminal

    def start(self) -> None:
        import termios
        import tty

        fd = self._fd()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd, termios.TCSANOW)  # keys one by one, unechoed; Ctrl-C still works
        self._spawn(self._read)

    def _read(self) -> None:
        fd = self._fd()
        sounding: tuple[int, float] | None = None  # (pitch, release time)
        pending, since = b"", 0.0  # an escape sequence begun in a read, and when
        while not self._stop.is_set():
            wait = 0.05 if sounding is None else min(max(sounding[1] - time.monotonic(), 0), 0.05)
            ready, _, _ = select.select([fd], [], [], wait)
            now = time.monotonic()
            if sounding is not None and (ready or now >= sounding[1]):
                self.put(mido.Message("note_off", note=sounding[0], velocity=0),
                         when=min(now, sounding[1]))
                sounding = None
            if not ready:
                if pending and now - since >= KEY_TIMEOUT:
                    pending = b""  # nothing more came: it was the Escape key alone
                continue
            begun = bool(pending)
            keys, pending = key_presses(pending + os.read(fd, 1024))
            since = since if begun and pending else now
            for key in keys:
                if key in ENTER:
                    self.put(None, reason="Enter")
                elif key in KEY_PITCHES:
                    if sounding is not None:  # several keys in one read: each ends the last
                        self.put(mido.Message("note_off", note=sounding[0], velocity=0),
                                 when=now)
                    pitch = KEY_PITCHES[key]
                    self.put(mido.Message("note_on", note=pitch, velocity=self.velocity),
                             when=now)
                    sounding = (pitch, now + self.hold)

    def close(self) -> None:
        super().close()
        if self._saved is not None:
            import termios

            termios.tcsetattr(self._fd(), termios.TCSADRAIN, self._saved)
            self._saved = None


def keyboard_picture() -> str:
    """The computer-keyboard layout, to show on screen before playing."""
    lines = []
    for row in reversed(KEY_ROWS):
        keys = [(key, KEY_PITCHES[key]) for key in row]
        for indent, black in (("   ", True), (" ", False)):
            lines.append(indent + "  ".join(f"{k}={midi_name(p):<3}" for k, p in keys
                                            if ("#" in midi_name(p)) == black))
    lines.append(" Enter ends, Ctrl-C stops")
    return "\n".join(lines)


def open_input(spec: str | None, speed: float = 1.0, hold: float = 0.4) -> Input:
    """The input named on the command line: None (the first MIDI port), a port name, `keys`
    or `replay:FILE.mid`. Raises SynthError naming what exists when it cannot be found."""
    if spec is not None and spec.startswith(REPLAY_PREFIX):
        return ReplayInput(Path(spec[len(REPLAY_PREFIX):]), speed)
    if speed != 1.0:
        raise SynthError("--speed only applies to --input replay:FILE.mid")
    if spec == KEYS:
        return KeysInput(hold=hold)
    problems: list[str] = []
    names = devices.midi_input_names(problems)
    return PortInput(devices.choose(spec, names, "MIDI input", OTHER_INPUTS, problems))
