"""The studio in a real headless Chromium (Debian's chromium + chromium-driver, Selenium):
the library lists the shipped dataset and plays a song, composing from the page makes a song
that plays and lands in out/ and in the library, a phrase typed on the computer keys in the
duet page gets an answer shown with its latency, a take recorded in the page lands in
dataset/, and a MIDI file given to the page is imported. The browser plays real Web Audio.
The studio is opened as `synth studio` opens it, by its address with the token; a page of
another origin in the same browser cannot write into it."""

from __future__ import annotations

import base64
import contextlib
import shutil
import threading
import time
from pathlib import Path

import pytest

from browser import browser
from conftest import make_midi

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[1]


driver = pytest.fixture(scope="module")(browser)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from synth.studio.server import Background

    root = tmp_path_factory.mktemp("studio")
    shutil.copytree(REPO / "dataset", root / "dataset")
    with Background(root) as running:
        yield running


def wait(driver, test, seconds=30, what="the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.05).until(
        lambda d: test(d), message=f"{what} did not get there in {seconds} s")


def css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def errors_shown(driver) -> str:
    toast = css(driver, "#toast")
    return toast.text if toast.is_displayed() else ""


def open_page(driver, studio, page):
    driver.get(f"{studio.url}#{page}")
    driver.refresh()  # a hash change alone does not reload
    wait(driver, lambda d: d.execute_script("return document.body.dataset.page") == page)


def test_library_lists_the_shipped_dataset_and_plays_a_song(driver, studio):
    open_page(driver, studio, "library")
    shipped = [p for p in (studio.root / "dataset").glob("*.txt") if p.name != "README.txt"]
    wait(driver, lambda d: len(all_css(d, ".song")) == len(shipped), what="the song list")
    titles = [e.text for e in all_css(driver, ".song .title")]
    assert "Bung Your Eye" in titles
    all_css(driver, ".song")[2].click()
    wait(driver, lambda d: css(d, "#song-title").text == titles[2])
    css(driver, "#song-play").click()
    wait(driver, lambda d: "playing" in css(d, "#song-play").get_attribute("class"),
         what="the player")
    time.sleep(0.5)
    assert css(driver, "#song-time").text != "" and not errors_shown(driver)
    css(driver, "#song-play").click()  # stop
    css(driver, "#filter").send_keys("chorale bwv 10")
    wait(driver, lambda d: all(("Chorale" in e.text) for e in all_css(d, ".song .title")))


def test_compose_from_the_page_plays_and_lands_in_out_and_the_library(driver, studio):
    open_page(driver, studio, "compose")
    notes = css(driver, "input[name=notes]")
    notes.clear()
    notes.send_keys("60")
    css(driver, "#primer").send_keys("C4 E4:2 G4")
    css(driver, "#compose-go").click()
    wait(driver, lambda d: d.execute_script("return document.body.dataset.composeMs"),
         what="the composed song")
    assert not errors_shown(driver)
    assert "63 events after a 3-event primer" in css(driver, "#composed-meta").text
    # playing began while the WAV was still being rendered and saved: it lands soon after
    wait(driver, lambda d: (studio.root / "out" / "song.wav").exists(), what="out/song.wav")
    saved = sorted(p.name for p in (studio.root / "out").iterdir())
    assert saved == ["song.mid", "song.txt", "song.wav"]
    open_page(driver, studio, "library")
    wait(driver, lambda d: any(e.text == "song" for e in all_css(d, ".song .title")),
         what="the composed song in the library")


def test_a_phrase_typed_in_the_duet_gets_an_answer(driver, studio):
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(driver, studio, "duet")
    gap = css(driver, "#duet-gap")
    gap.clear()
    gap.send_keys("0.3")
    css(driver, "#duet-start").click()
    wait(driver, lambda d: "Listening" in css(d, "#duet-status").text, what="the duet")
    keys = ActionChains(driver)
    for key in "qwer":  # C4 D4 E4 F4, the `--input keys` layout
        keys.key_down(key).pause(0.15).key_up(key).pause(0.05)
    keys.perform()
    wait(driver, lambda d: all_css(d, "#duet-log .latency"), what="the answer")
    entry = all_css(driver, "#duet-log li")[0]
    assert "C4" in entry.text and "F4" in entry.text
    assert float(entry.get_attribute("data-latency")) > 0
    assert css(driver, "#duet-log .latency").text.endswith("ms")
    wait(driver, lambda d: "playing" not in css(d, "#duet-log .answer").get_attribute("class"),
         what="the whole answer")
    assert css(driver, "#duet-log .answer").text.split()  # the answer's notes, shown
    assert not errors_shown(driver)
    css(driver, "#duet-start").click()  # stop


def test_a_take_recorded_in_the_page_lands_in_the_dataset(driver, studio):
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(driver, studio, "record")
    for field, value in (("#rec-name", "page take"), ("#rec-bpm", "240"), ("#rec-count", "2")):
        css(driver, field).clear()
        css(driver, field).send_keys(value)
    css(driver, "#rec-go").click()
    wait(driver, lambda d: d.execute_script("return document.body.dataset.started"),
         what="the end of the count-in")
    keys = ActionChains(driver)
    for key in "zxcv":  # C3 D3 E3 F3
        keys.key_down(key).pause(0.2).key_up(key).pause(0.05)
    keys.perform()
    css(driver, "#rec-go").click()
    wait(driver, lambda d: "Saved" in css(d, "#rec-status").text, what="the saved take")
    song = studio.root / "dataset" / "page-take.txt"
    assert song.is_file() and (studio.root / "dataset" / "takes" / "page-take.mid").is_file()
    from synth.music.songs import read_song

    assert [e.cls for e in read_song(song).events if e.cls] == [1, 3, 5, 6]


def test_a_pickup_in_the_count_in_is_kept_and_fast_notes_are_named(driver, studio):
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(driver, studio, "record")
    # 60 bpm: a count-in of 4 beats is 4 s, a quarter beat 0.25 s
    for field, value in (("#rec-name", "pickup take"), ("#rec-bpm", "60"), ("#rec-count", "4")):
        css(driver, field).clear()
        css(driver, field).send_keys(value)
    css(driver, "#rec-go").click()
    wait(driver, lambda d: d.execute_script("return document.body.dataset.recording"),
         what="the count-in")
    time.sleep(1.5)  # well inside the count-in
    keys = ActionChains(driver)
    keys.key_down("b").pause(0.3).key_up("b").perform()  # G3, a pickup
    assert not driver.execute_script("return document.body.dataset.started")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.started"),
         what="the end of the count-in")
    keys = ActionChains(driver)
    for key in "zxcvbnm":  # C3 D3 E3 F3 G3 A3 B3, 60 ms apart: a quarter beat is 250 ms
        keys.key_down(key).pause(0.03).key_up(key).pause(0.03)
    keys.pause(0.6).key_down("z").pause(0.3).key_up("z").perform()
    css(driver, "#rec-go").click()
    wait(driver, lambda d: "Saved" in css(d, "#rec-status").text, what="the saved take")
    status, warning = css(driver, "#rec-status").text, css(driver, "#rec-warning")
    assert "before beat 1 (a pickup played during the count-in)" in status, status
    assert warning.is_displayed() and "faster than a quarter beat at 60 bpm" in warning.text
    from synth.music.songs import read_song

    events = read_song(studio.root / "dataset" / "pickup-take.txt").events
    assert events[0].cls == 8  # the G3 played during the count-in opens the song
    assert len([e for e in events if e.cls]) < 9  # some of the fast notes were merged
    shot = studio.root / "record-page.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 0


def test_a_midi_file_given_to_the_page_is_imported(driver, studio, tmp_path):
    open_page(driver, studio, "library")
    data = make_midi(tmp_path / "x.mid", [[(0, 1, 60), (1, 2, 64), (2, 4, 67)]]).read_bytes()
    driver.execute_script(
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));"
        "window.studioImport([new File([bytes], 'Dropped Tune.mid')]);",
        base64.b64encode(data).decode())
    wait(driver, lambda d: "dataset/dropped-tune.txt" in css(d, "#toast").text, what="the import")
    assert (studio.root / "dataset" / "dropped-tune.txt").is_file()
    wait(driver, lambda d: css(d, "#song-title").text == "Dropped Tune")


# --- another page in the same browser ------------------------------------------------------

ATTACK = """<!doctype html><title>another site</title><body>
<iframe name="sink"></iframe>
<form id="record" method="post" enctype="text/plain" target="sink" action="STUDIO/api/record">
<input name='{"name": "evil", "bpm": 120, "messages": [[0, 60, 90], [0.5, 60, 0]], "x": "'
       value='"}'></form>
<form id="train" method="post" enctype="text/plain" target="sink" action="STUDIO/api/train">
<input name='{"epochs": 1, "x": "' value='"}'></form>
<script>
const take = JSON.stringify({name: "evil", bpm: 120, messages: [[0, 60, 90], [0.5, 60, 0]]});
window.results = {};
async function attack() {
  const said = (key) => (value) => { window.results[key] = String(value); };
  await fetch("STUDIO/api/record", {method: "POST", mode: "no-cors", credentials: "include",
    headers: {"Content-Type": "text/plain"}, body: take}).then(said("plain"), said("plain"));
  await fetch("STUDIO/api/compose", {method: "POST", credentials: "include",
    headers: {"Content-Type": "application/json"}, body: '{"notes": 3}'})
    .then((r) => said("json")(r.status), said("json"));
  await new Promise((done) => {
    const ws = new WebSocket("STUDIO".replace("http", "ws") + "/api/duet");
    ws.onopen = () => { window.results.ws_opened = "yes";
      ws.send(JSON.stringify({type: "start", gap: 0.2})); };
    ws.onmessage = (e) => { window.results.ws_message = e.data; ws.close(); };
    ws.onclose = (e) => { window.results.ws = "closed " + e.code; done(); };
    setTimeout(done, 5000);
  });
  document.getElementById("record").submit();
  await new Promise((done) => setTimeout(done, 300));
  document.getElementById("train").submit();
  await new Promise((done) => setTimeout(done, 300));
  window.results.done = "yes";
}
attack();
</script>"""


@contextlib.contextmanager
def another_site(studio_origin: str):
    """A page on another local port (a different origin, the same site: the studio's
    SameSite=Strict cookie goes along) that tries to write into the studio."""
    import http.server

    page = ATTACK.replace("STUDIO", studio_origin).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for folder in ("dataset", "out", "model", "models") if (root / folder).exists()
            for p in sorted((root / folder).rglob("*")) if p.is_file()}


def attack_from(driver, studio_origin: str) -> dict:
    with another_site(studio_origin) as url:
        driver.get(url)
        wait(driver, lambda d: d.execute_script("return window.results && window.results.done"),
             what="the other page's attempts")
        return driver.execute_script("return window.results")


def test_another_page_in_the_browser_cannot_write_into_the_studio(driver, studio):
    open_page(driver, studio, "library")  # the browser holds the studio's cookie now
    before = files_of(studio.root)
    results = attack_from(driver, studio.origin)
    time.sleep(1.0)  # anything that got in would have saved by now
    assert "ws_opened" not in results and results["ws"].startswith("closed")
    assert results["json"].startswith("TypeError")  # its preflight got no CORS answer
    assert files_of(studio.root) == before
    assert not (studio.root / "dataset" / "evil.txt").exists()
    assert studio.app.state.trainer.state == "idle"
    open_page(driver, studio, "library")  # the studio's own page still works
    wait(driver, lambda d: all_css(d, ".song"), what="the song list")


def test_the_same_page_gets_into_a_studio_without_its_door(driver, tmp_path):
    """The attempts above are real: against the app with no door, the other page opens the
    duet; its text/plain and form posts are still stopped there by the JSON-only rule."""
    import uvicorn

    from synth.studio.app import create_app
    from synth.studio.server import _any_port

    (tmp_path / "dataset").mkdir()
    sock = _any_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(create_app(tmp_path), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait(driver, lambda d: server.started, what="the open studio")
        results = attack_from(driver, f"http://127.0.0.1:{sock.getsockname()[1]}")
        assert results.get("ws_opened") == "yes" and "ready" in results["ws_message"]
        time.sleep(1.0)
        assert files_of(tmp_path) == {}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
