"""The studio's door and routes under generated requests (hypothesis, in-process through
Starlette's TestClient): every route and the duet's WebSocket, with malformed, oversized,
non-ASCII, wrong-typed and cross-origin requests. None may answer 500; every hostile or
malformed one gets a 4xx; no file under the working directory changes."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import soundfile

from conftest import make_midi

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

with warnings.catch_warnings():  # newer Starlette asks for httpx2; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient, WebSocketDenialResponse  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from synth.studio.app import create_app  # noqa: E402
from synth.studio.door import Door  # noqa: E402

pytestmark = pytest.mark.slow
PORT = 8000
OWN = f"http://127.0.0.1:{PORT}"
TOKEN = "k3y-Of-the-studio"
DOOR = Door.serving("127.0.0.1", PORT, TOKEN)
RUNS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
            suppress_health_check=list(HealthCheck))

# every route of the app, with a stand-in for its path parameter
ROUTES = {"/": ("GET",), "/api/songs": ("GET",), "/api/song": ("GET",), "/api/audio": ("GET",),
          "/api/download": ("GET",), "/api/import": ("POST",), "/api/styles": ("GET",),
          "/api/compose": ("GET", "POST"), "/api/record": ("POST",),
          "/api/train": ("GET", "POST"), "/api/train/stop": ("POST",), "/api/piano": ("GET",),
          "/api/piano/reverb": ("GET",), "/piano/{name}": ("GET",),
          "/piano/release/{name}": ("GET",), "/static/{name}": ("GET",)}
JSON_ROUTES = ("/api/compose", "/api/record", "/api/train")
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
PATHS = ("dataset/tune.txt", "dataset/takes/tune.mid", "out/song.txt", "out/song.wav",
         "../secret.txt", "/etc/passwd", "dataset/../../x.txt", "model/manifest.json",
         "dataset/.hidden.txt", "dataset\\tune.txt", "C:/x.txt", "dataset/nope.txt")

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
oversized = st.integers(500, 2000).map(lambda n: "é" * n)  # httpx caps a URL at 64 kB
tricky = st.sampled_from(("²", "٣", "-1", "1e309", "NaN", "inf", "0x10", "½", " 1", "1 ", "",
                          "9" * 40, "\x00", "%", "é"))
junk = st.one_of(tricky, tricky, text, oversized)
query = st.dictionaries(
    st.sampled_from(("path", "format", "name", "since", "room_size", "wet", "cutoff", "x")),
    st.one_of(junk, st.sampled_from(PATHS), st.sampled_from(("wav", "mid", "txt", "0", "3"))),
    max_size=4)
wrong_value = st.one_of(st.text(min_size=1, max_size=20), st.booleans(), st.none().map(
    lambda _: [1, 2]), st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: not x.is_integer()), st.integers(-10**12, 0), st.integers(10**7, 10**15),
    st.dictionaries(text, text, max_size=2))
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | text,
                          lambda inner: st.lists(inner, max_size=4) |
                          st.dictionaries(text, inner, max_size=4), max_leaves=12)


def path_of(route: str, name: str) -> str:
    """The route with `name` (percent-encoded, so that any text reaches the server)."""
    return route.replace("{name}", quote(name, safe="")) if "{" in route else route


@st.composite
def request_line(draw, methods=METHODS):
    """(method, path, query) on one of the routes, or near one."""
    route = draw(st.sampled_from(sorted(ROUTES)))
    # mostly the route's own methods, so that requests get past the router into the route
    method = draw(st.one_of(st.sampled_from(ROUTES[route]), st.sampled_from(ROUTES[route]),
                            st.sampled_from(methods)))
    name = draw(st.one_of(text, st.sampled_from(("app.js", "60.flac", "..", "%2e%2e",
                                                 "style.css", "1000.flac", "é.js"))))
    return method, path_of(route, name.replace("/", "") or "x"), draw(query)


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under `root` with a digest of its bytes."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root) + "/"] = ""
        for name in files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()) \
                .hexdigest()
    return found


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    (root / "dataset" / "takes").mkdir(parents=True)
    (root / "dataset" / "tune.txt").write_text("# title: Tune\n13 15:2 17 0:0.5 18\n")
    make_midi(root / "dataset" / "takes" / "tune.mid", [[(0, 1, 60), (1, 2, 62)]])
    (root / "out").mkdir()
    (root / "out" / "song.txt").write_text("13 13 20 20\n")
    soundfile.write(root / "out" / "song.wav", np.zeros((441, 2), np.float32), 44100)
    (root / "secret.txt").write_text("13 15 17\n")
    app = create_app(root, DOOR)
    with TestClient(app, base_url=OWN, raise_server_exceptions=True) as client:
        client.root, client.seen = root, {"requests": 0, "routes": set()}
        client.before = tree(root)
        yield client
    assert app.state.trainer.state == "idle"  # nothing the fuzz sent started a training
    print(f"\nstudio fuzz: {client.seen['requests']} HTTP requests, "
          f"{client.seen.get('socket', 0)} WebSocket handshakes and messages")


def send(client, method, path, params, headers, body=b"", cookie=True):
    client.cookies.clear()
    if cookie:
        client.cookies.set(DOOR.cookie, TOKEN)
    answer = client.request(method, path, params=params, headers=headers, content=body)
    client.seen["requests"] += 1
    client.seen["routes"].add(path if path in ROUTES else path.rsplit("/", 1)[0])
    assert answer.status_code < 500, (method, path, params, headers, answer.text[:300])
    if answer.status_code >= 400 and method != "HEAD":
        line = answer.text if answer.headers["content-type"].startswith("text/plain") \
            else answer.json()["error"]
        assert line.strip() and "\n" not in line.strip() and "Traceback" not in line
    return answer


def unchanged(client) -> None:
    assert tree(client.root) == client.before


# --- hostile: another site, another host, no token or a wrong one --------------------------

hostile_aspects = st.fixed_dictionaries({
    "token": st.sampled_from(("right", "none", "wrong", "é", "²", "🎹", "long")),
    "host": st.sampled_from((f"127.0.0.1:{PORT}", f"localhost:{PORT}", "attacker.example",
                             f"attacker.example:{PORT}", "127.0.0.1.attacker.example",
                             "[::1]", "", "é", "localhost:1")),
    "origin": st.sampled_from((OWN, None, "http://attacker.example", "null",
                               "http://127.0.0.1:9999", f"https://127.0.0.1:{PORT}", "é")),
    "site": st.sampled_from((None, "cross-site", "same-site", "same-origin", "none")),
    "content_type": st.sampled_from(("application/json", "text/plain",
                                     "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=b", None)),
})
TOKENS = {"right": TOKEN, "wrong": "nope", "é": "é", "²": "²", "🎹": "🎹", "long": "x" * 5000}


def is_hostile(method: str, aspect: dict) -> bool:
    # the allow-list holds names: a port of ours or not, "localhost:1" is one of them
    own_host = aspect["host"] in (f"127.0.0.1:{PORT}", f"localhost:{PORT}", "localhost:1")
    return (aspect["token"] != "right" or not own_host or
            aspect["site"] in ("cross-site", "same-site") or
            (method not in ("GET", "HEAD", "OPTIONS") and aspect["origin"] != OWN))


def test_hostile_requests_are_refused_and_change_nothing(studio):
    count = {"n": 0}

    @settings(max_examples=1200, **RUNS)
    @given(request_line(), hostile_aspects, st.one_of(json_value.map(
        lambda v: json.dumps(v).encode()), st.binary(max_size=200)), st.data())
    def run(line, aspect, body, data):
        method, path, params = line
        if not is_hostile(method, aspect):
            aspect = {**aspect, "token": data.draw(st.sampled_from(sorted(set(TOKENS))))}
        headers = {"Host": aspect["host"].encode()}
        where = data.draw(st.sampled_from(("cookie", "query", "header")))
        if aspect["token"] != "none":
            given = TOKENS[aspect["token"]]
            if where == "query":
                params = {**params, "token": given}
            elif where == "header":
                headers["Authorization"] = f"Bearer {given}".encode()
            else:
                headers["Cookie"] = f"{DOOR.cookie}={given}".encode()
        if aspect["origin"] is not None:
            headers["Origin"] = aspect["origin"].encode()
        if aspect["site"] is not None:
            headers["Sec-Fetch-Site"] = aspect["site"]
        if aspect["content_type"] is not None:
            headers["Content-Type"] = aspect["content_type"]
        answer = send(studio, method, path, params, headers, body, cookie=False)
        count["n"] += 1
        if is_hostile(method, aspect):
            assert 400 <= answer.status_code < 500, (method, path, aspect, answer.text[:200])
        unchanged(studio)

    run()
    assert count["n"] >= 1200


# --- from the studio's own page, but malformed ---------------------------------------------


@st.composite
def bad_json_body(draw, route: str):
    """A body the route must refuse: not JSON, not an object, or a field of the wrong type."""
    kind = draw(st.sampled_from(("bytes", "not-object", "wrong-field")))
    if kind == "bytes":
        raw = draw(st.one_of(st.binary(max_size=300), text.map(str.encode),
                             st.just(b"{" * 5000), st.just(b'{"notes": 1e999}'),
                             st.integers(2**20, 2**20 + 100).map(lambda n: b" " * n)))
        try:
            if isinstance(json.loads(raw), dict):
                raw = b"[" + raw  # JSON no longer
        except ValueError:
            pass
        return raw
    if kind == "not-object":
        value = draw(json_value.filter(lambda v: not isinstance(v, dict)))
        return json.dumps(value).encode()
    field = {"/api/compose": "notes", "/api/record": "messages", "/api/train": "epochs"}[route]
    value = draw(wrong_value)
    if field == "messages" and isinstance(value, list):
        value = [value]  # [[1, 2]]: a message that is not [time, note, velocity]
    extra = draw(st.dictionaries(text, json_value, max_size=3))
    return json.dumps({**extra, field: value}).encode()


def test_malformed_requests_from_the_page_get_a_4xx_and_change_nothing(studio):
    count = {"n": 0}
    own = {"Origin": OWN, "Sec-Fetch-Site": "same-origin"}

    @settings(max_examples=900, **RUNS)
    @given(request_line(), st.data())
    def run(line, data):
        method, path, params = line
        headers = dict(own)
        body = b""
        if method == "POST" and path in JSON_ROUTES:
            body = data.draw(bad_json_body(path))
            headers["Content-Type"] = data.draw(st.sampled_from(
                ("application/json", "application/json; charset=utf-8", "text/plain",
                 "APPLICATION/JSON", "application/jsonx")))
        elif method == "POST" and path == "/api/import":
            body = data.draw(st.one_of(st.binary(max_size=300),
                                       st.binary(max_size=100).map(lambda b: b"MThd" + b)))
            headers["Content-Type"] = data.draw(st.sampled_from(
                ("application/octet-stream", "audio/midi", "text/plain", "")))
        elif method != "GET":
            body = data.draw(st.binary(max_size=100))
        answer = send(studio, method, path, params, headers, body)
        count["n"] += 1
        if method == "POST" and path != "/api/train/stop":
            assert 400 <= answer.status_code < 500, (path, params, body[:100], answer.text)
        unchanged(studio)

    run()
    assert count["n"] >= 900
    assert {path_of(r, "").rstrip("/") or "/" for r in ROUTES} <= studio.seen["routes"]


# --- the duet's WebSocket ------------------------------------------------------------------

def _not_start_or_stop(value) -> bool:
    return not (isinstance(value, dict) and value.get("type") in ("start", "stop"))


socket_message = st.one_of(
    text, oversized, json_value.filter(_not_start_or_stop).map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(("down", "up", "dance", "", "START"))},
                          optional={"note": json_value, "velocity": json_value}).map(json.dumps),
    st.fixed_dictionaries({"type": st.just("start"), "gap": wrong_value.filter(
        lambda v: not (isinstance(v, float) and 0.05 <= v <= 10))}).map(json.dumps))  # 0.05-10 s


def test_the_duet_socket_refuses_other_sites_and_survives_bad_messages(studio):
    count = {"n": 0, "accepted": 0}

    own = {"token": "right", "host": f"127.0.0.1:{PORT}", "origin": OWN, "site": "same-origin",
           "content_type": None}

    @settings(max_examples=300, **RUNS)
    @given(st.one_of(st.just(own), hostile_aspects),
           st.lists(socket_message, min_size=1, max_size=6))
    def run(aspect, messages):
        studio.cookies.clear()
        headers = {"Host": aspect["host"].encode()}
        if aspect["token"] != "none":
            headers["Cookie"] = f"{DOOR.cookie}={TOKENS[aspect['token']]}".encode()
        if aspect["origin"] is not None:
            headers["Origin"] = aspect["origin"].encode()
        if aspect["site"] is not None:
            headers["Sec-Fetch-Site"] = aspect["site"]
        url = f"ws://127.0.0.1:{PORT}/api/duet"  # the Host header says where it goes
        hostile = is_hostile("WEBSOCKET", aspect)
        try:
            with studio.websocket_connect(url, headers=headers) as ws:
                assert not hostile, aspect
                count["accepted"] += 1
                for message in messages:
                    ws.send_text(message)
                    count["n"] += 1
                    reply = ws.receive_json()
                    assert reply["type"] == "error" and "\n" not in reply["error"].strip()
                ws.send_text(json.dumps({"type": "stop"}))
        except (WebSocketDenialResponse, WebSocketDisconnect):
            assert hostile, aspect
            count["n"] += 1
        unchanged(studio)

    run()
    studio.seen["socket"] = count["n"]
    assert count["n"] >= 300 and count["accepted"] >= 50
