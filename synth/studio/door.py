"""The studio's door (as Jupyter guards its own): a token, from ?token= once and then a cookie;
an Origin check on every request that changes anything and on the duet's WebSocket; the
browser's own word on where a request comes from (Sec-Fetch-Site); and, with the Host
allow-list (Starlette's TrustedHostMiddleware) behind it, no way in for DNS rebinding.
Every refusal is a 4xx with one line."""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import Headers, QueryParams
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response

from synth.errors import SynthError

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOCAL_NAMES = ("127.0.0.1", "localhost")
WILDCARDS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_no_token(host: str) -> None:
    """--no-token is the old way, for a studio only this machine can reach."""
    if not is_loopback(host):
        raise SynthError(f"--no-token is for a studio on this machine only: --host {host} "
                         "is reachable from others; leave the token on")


def host_names(host: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The names a browser may put in the Host header to reach a studio listening on `host`
    (an IPv6 address in brackets): 127.0.0.1, localhost, the address itself, and (listening
    everywhere) this machine's name and addresses, plus `extra` (--allow-host)."""
    names = list(LOCAL_NAMES)
    if host in WILDCARDS:
        found = {socket.gethostname(), socket.getfqdn()}
        for name in list(found):
            try:
                found.update(socket.gethostbyname_ex(name)[2])
            except OSError:  # a name that does not resolve: reached by its other names
                pass
        names += sorted(found)
    else:
        names.append(host.strip("[]"))
    names += [name.strip().lower() for name in extra if name.strip()]
    return tuple(dict.fromkeys(_as_in_host(name.lower()) for name in names if name))


def _as_in_host(name: str) -> str:
    """A name as a browser writes it in Host and Origin: an IPv6 address in brackets."""
    return f"[{name}]" if ":" in name else name


def origins_of(names: Iterable[str], port: int) -> frozenset[str]:
    """The studio's own origins: http://NAME:PORT for each of its host names (as in Host)."""
    found = set()
    for name in names:
        found.add(f"http://{name}:{port}")
        if port == 80:  # browsers leave the default port out
            found.add(f"http://{name}")
    return frozenset(found)


@dataclass(frozen=True)
class Door:
    """Who may come in: the `token` (None: --no-token, on loopback only), the studio's
    `origins` and `hosts` (names, without the port), and the port, which names the cookie
    (cookies are not kept apart by port, two studios are)."""

    token: str | None
    port: int
    hosts: tuple[str, ...] = LOCAL_NAMES
    origins: frozenset[str] = field(default=frozenset())

    @classmethod
    def serving(cls, host: str, port: int, token: str | None,
                extra_hosts: Iterable[str] = ()) -> "Door":
        """The door of a studio listening on host:port."""
        if token is None:
            check_no_token(host)
        hosts = host_names(host, extra_hosts)
        return cls(token=token, port=port, hosts=hosts, origins=origins_of(hosts, port))

    @property
    def cookie(self) -> str:
        return f"synth_token_{self.port}"


def same(given: str, token: str) -> bool:
    """A token compared in constant time, as bytes: any text (é, emoji) is just a wrong one."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               token.encode("utf-8", "surrogatepass"))


class DoorMiddleware:
    """The ASGI middleware that keeps the door: outermost, so a request from elsewhere is
    refused before anything reads it."""

    def __init__(self, app, door: Door):
        self.app = app
        self.door = door

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        conn = HTTPConnection(scope)
        refusal, by_query = self.check(scope["type"], scope.get("method", "GET"), conn)
        if refusal:
            if scope["type"] == "websocket":  # before the handshake: the browser sees a 403
                reason = refusal.encode("ascii", "replace")[:120].decode()  # fits a close frame
                await send({"type": "websocket.close", "code": 1008, "reason": reason})
                return
            return await _refuse(refusal)(scope, receive, send)
        if by_query and scope["type"] == "http" and self._ours(conn):
            if scope["path"] == "/" and scope.get("method") in ("GET", "HEAD"):
                # the token leaves the address bar (and the history) once the cookie has it
                rest = [(k, v) for k, v in _query(conn).multi_items() if k != "token"]
                response = RedirectResponse("/" + ("?" + urlencode(rest) if rest else ""), 303)
                self._set_cookie(response)
                return await response(scope, receive, send)
            return await self.app(scope, receive, self._with_cookie(send))
        return await self.app(scope, receive, send)

    def check(self, kind: str, method: str, conn: HTTPConnection) -> tuple[str, bool]:
        """(why the request is refused or "", whether it brought the token in the address)."""
        headers: Headers = conn.headers
        token = self.door.token
        query = _query(conn)
        given = query.get("token")
        bearer = _bearer(headers.get("authorization", ""))
        by_query = token is not None and given is not None and same(given, token)
        by_header = token is not None and bearer is not None and same(bearer, token)
        cookie = conn.cookies.get(self.door.cookie)
        by_cookie = token is not None and cookie is not None and same(cookie, token)
        if token is not None and not (by_query or by_header or by_cookie):
            if given is not None or bearer is not None:
                return "the token is wrong: open the address `synth studio` printed", False
            return ("this studio needs its token: open the address with ?token=... that "
                    "`synth studio` printed"), False
        site = headers.get("sec-fetch-site")
        navigation = headers.get("sec-fetch-mode") == "navigate" and method in ("GET", "HEAD")
        if site in ("cross-site", "same-site") and not navigation:
            return f"refused a {site} request: only the studio's own page may call it", False
        writes = kind == "websocket" or method not in SAFE_METHODS
        if writes:
            origin = headers.get("origin")
            if origin is None:
                # Browsers send Origin on every cross-origin POST and every WebSocket; a
                # request without one is a program, let in only with the token in hand
                # (the cookie alone is what a browser would add by itself).
                if not (by_query or by_header):
                    return ("a request that changes something needs an Origin header (the "
                            "studio's page sends it) or the token (?token= or "
                            "Authorization: Bearer)"), False
            elif origin not in self.door.origins:
                return (f"refused a request from {origin[:80]!r}: only the studio's own page "
                        "may change anything"), False
        return "", by_query

    def _ours(self, conn: HTTPConnection) -> bool:
        """Whether the Host is one of the studio's names: only there is the cookie set (a
        wrong Host is refused behind, by the allow-list)."""
        try:
            name = urlsplit("//" + conn.headers.get("host", "")).hostname
        except ValueError:
            return False
        return name is not None and _as_in_host(name) in self.door.hosts

    def _set_cookie(self, response: Response) -> None:
        response.set_cookie(self.door.cookie, self.door.token, httponly=True,
                            samesite="strict", path="/")

    def _with_cookie(self, send):
        header = Response()
        self._set_cookie(header)
        cookie = next(v for k, v in header.raw_headers if k == b"set-cookie")

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [(b"set-cookie", cookie)]
            await send(message)
        return sending


def _query(conn: HTTPConnection) -> QueryParams:
    try:
        return conn.query_params
    except Exception:  # a query string that does not decode: no token in it
        return QueryParams("")


def _bearer(value: str) -> str | None:
    kind, _, given = value.partition(" ")
    return given.strip() if kind.lower() in ("bearer", "token") and given.strip() else None


def _refuse(why: str) -> Response:
    return JSONResponse({"error": why}, status_code=403)
