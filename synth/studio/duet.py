"""The duet page's logic: `synth live`'s Session, fed by the keys the browser sends over a
WebSocket and answering into the socket as events (notes with their times), which the page
plays through Web Audio from the package's own piano samples. No audio crosses the network.

The session runs on a thread of its own, exactly as in the terminal: the same phrase end (in
beats, or --gap seconds), answer length, interruption or overlap, tempo from the phrase and
melody state carried through the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path

import mido
from starlette.websockets import WebSocket, WebSocketDisconnect

from synth.errors import SynthError
from synth.music.events import event_name
from synth.learn.generate import Sampling
from synth.play.inputs import Input
from synth.play.exchanges import Exchange
from synth.play.live import LiveSettings, Screen, Session
from synth.play.phrase_end import GAP_BEATS
from synth.play.outputs import Strike

MAX_MESSAGE = 4096  # bytes in one message from the page


class SocketOutput:
    """Where the session's answers go: notes sent to the page, which sounds them; the
    player's own keys already sound in the page."""

    def __init__(self, send):
        self.send = send

    def player_down(self, pitch: int, velocity: int, t: float) -> None:
        pass

    def player_up(self, pitch: int, t: float) -> None:
        pass

    def play(self, notes: Sequence[Strike], start: float, now: float) -> None:
        """An answer begins `start - now` seconds from now."""
        self.send({"type": "answer", "delay": max(start - now, 0.0), "notes": _notes(notes)})

    def extend(self, notes: Sequence[Strike]) -> None:
        self.send({"type": "more", "notes": _notes(notes)})

    def cut(self, t: float) -> None:
        self.send({"type": "cut"})

    def pump(self, now: float) -> None:
        pass

    def next_due(self) -> float:
        return float("inf")

    def close(self) -> list[Path]:
        return []


class SocketScreen(Screen):
    """What the terminal shows, sent to the page."""

    def __init__(self, send):
        self.send = send

    def answered(self, exchange: Exchange) -> None:
        self.send({"type": "answered", "latency_ms": round(exchange.latency_ms, 2),
                   "bpm": round(exchange.bpm, 1), "bpm_from": exchange.bpm_from,
                   "gap": round(exchange.gap, 3),
                   "phrase": [event_name(e) for e in exchange.phrase],
                   "left_out": exchange.left_out})

    def finished(self, exchange: Exchange) -> None:
        self.send({"type": "finished", "answer": [event_name(e) for e in exchange.answer],
                   "played": exchange.played, "interrupted": exchange.interrupted,
                   "overlapped": exchange.overlapped,
                   "latency_ms": round(exchange.latency_ms, 2)})


def _notes(notes: Sequence[Strike]) -> list[list[float]]:
    return [[round(n.on, 4), round(n.off, 4), n.pitch, n.velocity] for n in notes]


def settings_of(data: dict) -> LiveSettings:
    """LiveSettings from the page's start message, checked as the CLI's flags are."""
    from synth.studio.library import Ask

    ask = Ask(data)
    sampling = Sampling(temperature=ask.float("temperature", 1.0), top_p=ask.float("top_p", 1.0),
                        seed=ask.int("seed", None, 0, 2**32 - 1))
    bpm = ask.float("bpm", 0.0)
    return LiveSettings(gap=ask.float("gap", None), gap_beats=ask.float("gap_beats", GAP_BEATS),
                        interrupt=ask.bool("interrupt", True), overlap=ask.bool("overlap", False),
                        respond=ask.int("respond", None, 1, 500), bpm=bpm or None,
                        sampling=sampling).check()


class PageInput(Input):
    description = "the studio page"


def _key(data: dict) -> mido.Message | None:
    """A key message from the page: {"type": "down", "note", "velocity"} or "up"."""
    note, velocity = data.get("note"), data.get("velocity", 90)
    if not (isinstance(note, int) and not isinstance(note, bool) and 0 <= note <= 127):
        raise SynthError("note: expected a MIDI note number 0-127")
    if data["type"] == "up":
        return mido.Message("note_off", note=note)
    if not (isinstance(velocity, int) and not isinstance(velocity, bool) and
            1 <= velocity <= 127):
        raise SynthError("velocity: expected 1-127")
    return mido.Message("note_on", note=note, velocity=velocity)


async def serve(websocket: WebSocket, library) -> None:
    """One duet: a start message with the settings, then keys until the page goes."""
    await websocket.accept()
    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue = asyncio.Queue()

    def send(message: dict) -> None:  # from the session's thread
        loop.call_soon_threadsafe(outbox.put_nowait, message)

    async def sender() -> None:
        while True:
            message = await outbox.get()
            if message is None:
                return
            await websocket.send_json(message)

    source = PageInput()
    session = None
    thread = None
    writer = asyncio.create_task(sender())
    try:
        while True:
            text = await websocket.receive_text()
            try:
                data = _message(text)
                if data["type"] == "start":
                    if session is not None:
                        raise SynthError("the duet has started already")
                    settings = settings_of(data)
                    model = library.model(data.get("style") or None)
                    session = Session(model, SocketOutput(send), settings,
                                      screen=SocketScreen(send))
                    thread = threading.Thread(target=_run, args=(session, source, send),
                                              daemon=True, name="duet")
                    thread.start()
                    send({"type": "ready", "gap": settings.gap, "gap_beats": settings.gap_beats})
                elif data["type"] in ("down", "up"):
                    if session is None:
                        raise SynthError("send a start message first")
                    source.put(_key(data))
                elif data["type"] == "stop":
                    break
                else:
                    raise SynthError(f"unknown message type {str(data['type'])[:20]!r}: "
                                     "expected start, down, up or stop")
            except SynthError as exc:
                send({"type": "error", "error": str(exc)})
    except WebSocketDisconnect:
        pass
    finally:
        source.put(None, reason="the page left")
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)
        send(None)
        with contextlib.suppress(Exception):
            await writer
        with contextlib.suppress(Exception):
            await websocket.close()


def _message(text: str) -> dict:
    import json

    if len(text) > MAX_MESSAGE:
        raise SynthError("message too long")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise SynthError("expected a JSON message") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise SynthError("expected a JSON object with a type")
    return data


def _run(session: Session, source: Input, send) -> None:
    try:
        session.run(source)
        session.close()
    except Exception as exc:  # reaches the page as one line; the socket stays usable
        send({"type": "error", "error": f"the duet stopped: {exc}"})
