"""The studio's routes: each parses a request, calls the library (synth/studio/*.py, which
call synth.api and the modules the CLI calls) and answers JSON, a file or a socket message.

Every SynthError reaches the page as {"error": "..."} with status 400 (404 for a missing
file, 415 for a body of the wrong type); anything unforeseen is logged and reaches the page as
one line, never a traceback. Before any route, the door (door.py) lets in only the studio's user.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from synth.learn import styles
from synth.errors import SynthError
from synth.sound.piano import SAMPLES
from synth.studio import duet, takes, webpiano
from synth.studio.door import Door, DoorMiddleware
from synth.studio.library import MAX_UPLOAD, Library, compose_defaults
from synth.studio.paths import Refused
from synth.studio.training import Trainer, folders

STATIC = Path(__file__).parent / "static"
MAX_JSON = 2**20  # a request body: a recorded take of an hour is well under this
MIDI_TYPES = ("application/octet-stream", "audio/midi", "audio/x-midi")
log = logging.getLogger("synth.studio")


def _error(exc: Exception) -> JSONResponse:
    if isinstance(exc, SynthError):
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))
    log.exception("unexpected error")
    return JSONResponse({"error": f"the studio failed: {type(exc).__name__}: {exc}"[:300]},
                        status_code=500)


def create_app(root: Path = Path("."), door: Door | None = None) -> Starlette:
    """The studio for the working directory `root`, behind `door` (synth.studio.door: the
    token, the Origin check, the Host allow-list). `synth studio` and `Background` always
    give one; None is an app with no door, only for calling in-process (TestClient)."""
    root = Path(root)
    library = Library(root)
    trainer = Trainer(root)

    async def index(request: Request) -> Response:
        return _static("index.html", request)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if not re.fullmatch(r"[a-z]+\.(js|css)", name) or not (STATIC / name).is_file():
            return JSONResponse({"error": f"no file {name[:40]!r} here"}, status_code=404)
        return _static(name, request)

    async def piano_sample(request: Request) -> Response:
        name = request.path_params["name"]
        if not re.fullmatch(r"[0-9]{1,3}\.flac", name) or not (SAMPLES / name).is_file():
            return JSONResponse({"error": f"no piano sample {name[:20]!r}"}, status_code=404)
        return FileResponse(SAMPLES / name, media_type="audio/flac",
                            headers={"Cache-Control": "max-age=86400"})

    async def release_sample(request: Request) -> Response:
        name = request.path_params["name"]
        path = SAMPLES / "release" / name
        if not re.fullmatch(r"[0-9]{1,3}\.flac", name) or not path.is_file():
            return JSONResponse({"error": f"no release sample {name[:20]!r}"}, status_code=404)
        return FileResponse(path, media_type="audio/flac",
                            headers={"Cache-Control": "max-age=86400"})

    def _effects(request: Request):
        from synth.sound.effects import Effects

        ask, default = request.query_params, Effects()
        try:
            return Effects(room_size=float(ask.get("room_size", default.room_size)),
                           wet=float(ask.get("wet", default.wet)),
                           cutoff=float(ask.get("cutoff", default.cutoff))).check()
        except ValueError:
            raise SynthError("room_size, wet and cutoff must be numbers") from None

    async def piano(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(webpiano.settings, _effects(request)))
        except Exception as exc:
            return _error(exc)

    async def reverb(request: Request) -> Response:
        try:
            effects = _effects(request)
            data = await run_in_threadpool(webpiano.impulse, effects.room_size, effects.wet)
        except Exception as exc:
            return _error(exc)
        return Response(data, media_type="audio/wav", headers={"Cache-Control": "max-age=86400"})

    async def songs(request: Request) -> Response:
        try:
            return JSONResponse({"songs": await run_in_threadpool(library.songs)})
        except Exception as exc:
            return _error(exc)

    async def song(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(library.song, _path(request)))
        except Exception as exc:
            return _error(exc)

    async def audio(request: Request) -> Response:
        try:
            rendering = library.rendering(_path(request))
            if rendering is not None:  # composed just now: played while it is saved
                return StreamingResponse(rendering.wav(), media_type="audio/wav",
                                         headers={"Cache-Control": "no-store"})
            path, data = await run_in_threadpool(library.audio, _path(request))
        except Exception as exc:
            return _error(exc)
        if path is not None:
            return FileResponse(path, media_type="audio/wav")
        return StreamingResponse(data, media_type="audio/wav")  # rendered as it is played

    async def download(request: Request) -> Response:
        try:
            path, data, name = await run_in_threadpool(
                library.download, _path(request), request.query_params.get("format", ""))
        except Exception as exc:
            return _error(exc)
        if path is not None:
            return FileResponse(path, filename=name)
        kind = {"wav": "audio/wav", "mid": "audio/midi"}.get(name.rsplit(".", 1)[-1],
                                                             "text/plain; charset=utf-8")
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if isinstance(data, bytes):
            return Response(data, media_type=kind, headers=headers)
        return StreamingResponse(data, media_type=kind, headers=headers)  # a rendered WAV

    async def import_midi(request: Request) -> Response:
        try:
            if _media_type(request) not in MIDI_TYPES:
                raise WrongType("expected the MIDI file's bytes with Content-Type: "
                                "application/octet-stream or audio/midi")
            data = await _body(request, MAX_UPLOAD)
            return JSONResponse(await run_in_threadpool(
                library.import_midi, request.query_params.get("name", ""), data))
        except Exception as exc:
            return _error(exc)

    async def style_list(request: Request) -> Response:
        try:
            found = await run_in_threadpool(styles.installed, root)
        except Exception as exc:
            return _error(exc)
        return JSONResponse({"styles": [
            {"name": s.name, "packaged": s.packaged,
             "folder": None if s.packaged else os.path.relpath(s.path, root)} for s in found]})

    async def compose_form(request: Request) -> Response:
        return JSONResponse(compose_defaults())  # the page's form starts from the CLI's defaults

    async def compose(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(library.compose, await _json(request)))
        except Exception as exc:
            return _error(exc)

    async def record(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(takes.save, root, await _json(request)))
        except Exception as exc:
            return _error(exc)

    async def train_status(request: Request) -> Response:
        try:
            since = _count(request.query_params.get("since", "0"), "since")
        except SynthError as exc:
            return _error(exc)
        status = trainer.status(since)
        return JSONResponse({**status, "folders": await run_in_threadpool(folders, root)})

    async def train_start(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(trainer.start, await _json(request)))
        except Exception as exc:
            return _error(exc)

    async def train_stop(request: Request) -> Response:
        return JSONResponse(trainer.stop())

    async def duet_socket(websocket: WebSocket) -> None:
        await duet.serve(websocket, library)

    routes = [
        Route("/", index),
        Route("/api/songs", songs),
        Route("/api/song", song),
        Route("/api/audio", audio),
        Route("/api/download", download),
        Route("/api/import", import_midi, methods=["POST"]),
        Route("/api/styles", style_list),
        Route("/api/compose", compose_form),
        Route("/api/compose", compose, methods=["POST"]),
        Route("/api/record", record, methods=["POST"]),
        Route("/api/train", train_status),
        Route("/api/train", train_start, methods=["POST"]),
        Route("/api/train/stop", train_stop, methods=["POST"]),
        Route("/api/piano", piano),
        Route("/api/piano/reverb", reverb),
        Route("/piano/{name}", piano_sample),
        Route("/piano/release/{name}", release_sample),
        WebSocketRoute("/api/duet", duet_socket),
        Route("/static/{name}", static),
    ]
    # The door first, so a request from elsewhere is refused (403) before anything reads
    # it; then the Host allow-list, against DNS rebinding (400).
    middleware = [] if door is None else [
        Middleware(DoorMiddleware, door=door),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(door.hosts), www_redirect=False)]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        # Read the library once while the browser opens, so the first page is quick too.
        # Then the Web Audio piano's numbers (the live level takes most of a second).
        warm = (_quietly(library.songs), _quietly(webpiano.settings))
        threading.Thread(target=lambda: [work() for work in warm], daemon=True).start()
        yield
        await run_in_threadpool(trainer.stop)  # a training never outlives the studio

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.library = library
    app.state.trainer = trainer
    return app


TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}


@functools.lru_cache(maxsize=None)
def _static_bytes(name: str) -> tuple[bytes, str]:
    """A page file of the package, read once: served from memory, with no thread hop."""
    data = (STATIC / name).read_bytes()
    return data, '"' + hashlib.sha1(data).hexdigest()[:16] + '"'


def _static(name: str, request: Request) -> Response:
    data, etag = _static_bytes(name)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}  # revalidated: a new synth shows
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=TYPES[Path(name).suffix], headers=headers)


def _quietly(work):
    def run() -> None:
        try:
            work()
        except Exception:  # the page asks again and shows the error
            pass
    return run


def _path(request: Request) -> str:
    path = request.query_params.get("path")
    if not path:
        raise Refused("expected ?path=dataset/NAME.txt (or out/..., a file the library lists)")
    return path


def _count(text: str, what: str) -> int:
    """A whole number from a query or a header, in ASCII digits: str.isdigit takes "²"."""
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise SynthError(f"{what}: {text[:20]!r} is not a whole number")
    return int(text)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused past `limit` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and _count(declared, "Content-Length") > limit:
        raise SynthError(f"the upload is {int(declared)} bytes, over the limit of {limit}")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise SynthError(f"the upload is over the limit of {limit} bytes")
    return bytes(data)


class WrongType(SynthError):
    """A body of a kind the route does not take (415)."""

    status = 415


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _json(request: Request) -> object:
    """The JSON body, only as application/json: a form or text/plain body (what another page
    can send without asking) is refused before it is read."""
    if _media_type(request) != "application/json":
        raise WrongType("expected a JSON body with Content-Type: application/json")
    data = await _body(request, MAX_JSON)
    try:
        return json.loads(data)  # an empty body is not JSON either
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SynthError(f"the request is not JSON ({exc})") from None
