"""Serving the studio: the first free port from the one asked for, uvicorn on a socket bound
here (so no other program can take the port in between), the browser opened once the server
listens, a token by default (in the address it prints and opens), Ctrl-C to stop."""

from __future__ import annotations

import errno
import secrets
import socket
import threading
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path

from synth.errors import SynthError
from synth.studio.door import Door, check_no_token, is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
PORTS_TRIED = 50


def bind(host: str, port: int, tries: int = PORTS_TRIED) -> socket.socket:
    """A listening socket on `port`, else the next free one (up to `tries` ports on)."""
    if not 1 <= port <= 65535:
        raise SynthError(f"--port {port} is out of range: expected 1-65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in range(port, min(port + tries, 65536)):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                continue
            raise SynthError(f"cannot listen on {host}:{candidate}: {exc.strerror}") from None
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    raise SynthError(f"ports {port}-{candidate} on {host} are all taken: choose one with --port")


def url_of(host: str, port: int, token: str | None = None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(root: Path = Path("."), host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          open_browser: bool = True, say: Callable[[str], None] = print,
          use_token: bool = True, allow_hosts: Sequence[str] = ()) -> None:
    """Run the studio until Ctrl-C; `use_token=False` (--no-token) only on loopback."""
    import uvicorn

    from synth.studio.app import create_app

    exposed = not is_loopback(host)
    if not use_token:
        check_no_token(host)  # before a port is taken
    token = secrets.token_urlsafe(24) if use_token else None
    sock = bind(host, port)
    port = sock.getsockname()[1]
    door = Door.serving(host, port, token, allow_hosts)
    url = url_of(host, port, token)
    if exposed:
        say(f"warning: the studio is reachable from other machines on {host}:{port}; anyone "
            "with the token below can read and change dataset/, out/, model/ and models/ here.")
    say(f"synth studio: {url}  (Ctrl-C stops it)")
    config = uvicorn.Config(create_app(root, door), log_level="warning", lifespan="on",
                            ws_max_size=1 << 16)
    server = uvicorn.Server(config)
    if open_browser:
        threading.Thread(target=_open_when_ready, args=(server, url), daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down on Ctrl-C, then raises it again
        pass
    finally:
        sock.close()
    say("synth studio stopped")


def _open_when_ready(server, url: str) -> None:
    import time

    for _ in range(200):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)


class Background:
    """The studio served on a thread (for tests, benchmarks and notebooks): `with
    Background(root) as studio: studio.url ...` (the address with its token, as `synth
    studio` prints it); it stops when the block ends."""

    def __init__(self, root: Path = Path("."), host: str = DEFAULT_HOST, port: int = 0,
                 use_token: bool = True):
        self.root, self.host, self.port = Path(root), host, port
        self.token = secrets.token_urlsafe(24) if use_token else None

    def __enter__(self) -> "Background":
        import time

        import uvicorn

        from synth.studio.app import create_app

        self.sock = bind(self.host, self.port) if self.port else _any_port(self.host)
        port = self.sock.getsockname()[1]
        self.origin = url_of(self.host, port).rstrip("/")
        self.url = url_of(self.host, port, self.token)
        self.app = create_app(self.root, Door.serving(self.host, port, self.token))
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True, name="studio")
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise SynthError("the studio did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def _any_port(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(128)
    return sock
