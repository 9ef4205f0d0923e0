"""Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium, for the
studio's browser tests and bench/studio.py. Missing browser: the tests skip, unless
SYNTH_REQUIRE_BROWSER=1 (as CI sets it), where they fail."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--autoplay-policy=no-user-gesture-required", "--window-size=1400,900",
         "--disable-dev-shm-usage"]


def missing() -> str | None:
    """Why there is no browser to test with, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not any(shutil.which(name) for name in CHROMIUM):
        return "chromium is not installed (apt-get install chromium chromium-driver)"
    if not shutil.which(DRIVER):
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def required() -> bool:
    return os.environ.get("SYNTH_REQUIRE_BROWSER") == "1"


@contextmanager
def chromium(width: int = 1400, height: int = 900):
    """A fresh headless Chromium with its own profile folder, closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="synth-chromium-")
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = next(shutil.which(n) for n in CHROMIUM if shutil.which(n))
    driver = webdriver.Chrome(service=Service(shutil.which(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def browser():
    """A headless Chromium for a test module, or the reason it skips (or fails under
    SYNTH_REQUIRE_BROWSER=1): use as `driver = pytest.fixture(scope="module")(browser)`."""
    import pytest

    why = missing()
    if why:
        if required():
            pytest.fail(f"SYNTH_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    with chromium() as d:
        yield d
