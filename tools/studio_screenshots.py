"""Screenshots of every studio page, taken by headless Chromium, for the README:
docs/studio-library.png, -compose, -duet, -record and -train. Each page is shown in use: a
song chosen, a song composed, a phrase answered, a take recorded, a style trained.

    python tools/studio_screenshots.py [--out docs] [--no-train]
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from browser import chromium  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from synth.studio.server import Background  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="synth-shots-"))
    shutil.copytree(REPO / "dataset", root / "dataset")
    args.out.mkdir(exist_ok=True)
    try:
        with Background(root) as studio, chromium(1400, 860) as d:
            until = lambda test, s=60: WebDriverWait(d, s, 0.05).until(test)  # noqa: E731
            css = lambda sel: d.find_element(By.CSS_SELECTOR, sel)  # noqa: E731

            def go(page):  # by the address with the token, as a user opens it; then the cookie
                d.get(f"{studio.url}#{page}")
                d.refresh()
                until(lambda _: d.execute_script("return document.body.dataset.page") == page)
                time.sleep(0.5)

            def shot(page, pause=0.6):
                d.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
                time.sleep(pause)
                d.save_screenshot(str(args.out / f"studio-{page}.png"))
                print(args.out / f"studio-{page}.png")

            go("compose")
            css("#primer").send_keys("E4 D4 C4:2")
            css("#compose-go").click()
            until(lambda _: d.execute_script("return document.body.dataset.composeMs"))
            time.sleep(2.5)
            shot("compose")

            go("library")
            until(lambda _: d.find_elements(By.CSS_SELECTOR, ".song"))
            d.find_elements(By.CSS_SELECTOR, ".song")[3].click()
            until(lambda _: css("#song-title").text)
            css("#song-play").click()
            time.sleep(3)
            shot("library")
            css("#song-play").click()

            go("duet")
            css("#duet-start").click()
            until(lambda _: "Listening" in css("#duet-status").text)
            for phrase in ("qwe", "ter"):
                keys = ActionChains(d)
                for key in phrase:
                    keys.key_down(key).pause(0.25).key_up(key).pause(0.05)
                keys.perform()
                until(lambda _: len(d.find_elements(By.CSS_SELECTOR, "#duet-log .latency"))
                      >= phrase_count(d, phrase))
                if phrase == "qwe":
                    time.sleep(2.2)
            until(lambda _: d.find_elements(By.CSS_SELECTOR, "#duet-keys .answer"))
            shot("duet", 0.05)  # the answer sounding on the keys
            css("#duet-start").click()

            go("record")
            css("#rec-bpm").clear()
            css("#rec-bpm").send_keys("200")
            css("#rec-count").clear()
            css("#rec-count").send_keys("2")
            css("#rec-go").click()
            until(lambda _: d.execute_script("return document.body.dataset.recording"))
            keys = ActionChains(d)
            for key, hold in zip("qwertewq", (0.3, 0.3, 0.3, 0.3, 0.6, 0.3, 0.3, 0.9)):
                keys.key_down(key).pause(hold).key_up(key).pause(0.02)
            keys.perform()
            css("#rec-go").click()
            until(lambda _: "Saved" in css("#rec-status").text)
            shot("record")

            go("train")
            if not args.no_train:
                css("input[name=style]").send_keys("sketch")
                css("input[name=epochs]").clear()
                css("input[name=epochs]").send_keys("3")
                css("#train-go").click()
                until(lambda _: d.execute_script("return document.body.dataset.train")
                      in ("done", "failed"), 600)
            shot("train")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def phrase_count(d, phrase) -> int:
    return {"qwe": 1, "ter": 2}[phrase]


if __name__ == "__main__":
    main()
