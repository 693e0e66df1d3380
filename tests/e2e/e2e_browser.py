"""Helpers of the browser tests: a real `voxloop serve` and Debian's Chromium driven by Playwright.

Chromium gets a fake microphone (a WAV file played once) and autoplay without a gesture;
every request to a host other than 127.0.0.1 is blocked and recorded, so a test can assert
that the page works offline.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Page, sync_playwright

from voxloop import audio
from voxloop_bench.browser_microphone import CHROMIUM, CHROMIUM_ARGS

PROBE = Path(__file__).with_name("probe.js")
PAGE_USER = "voxloop"  # server.PAGE_USER
TURN_SECONDS = 90
LOUD_RMS = 0.01
REPORT = Path(os.environ.get("VOXLOOP_E2E_REPORT", "build/e2e-latency.jsonl"))


class Browser:
    """One Chromium page on the app, and what it tried to fetch from outside."""

    def __init__(self, page: Page, external: list[str]) -> None:
        self.page = page
        self.external = external

    def now(self) -> float:
        """The page clock (performance.now(), ms)."""
        return float(self.page.evaluate("performance.now()"))

    def upload(self, path: Path) -> None:
        """Put a file into the question input (as a person choosing a file would)."""
        self.page.click("#audio_in button[aria-label='Upload file']")
        self.page.set_input_files("#audio_in input[type=file]", str(path))
        self.page.wait_for_selector("#audio_in a[data-testid='download-link']")

    def wait_for_turn(self, number: int) -> None:
        """Wait until the page shows the latency of turn `number` (the turn has ended)."""
        self.page.wait_for_function(
            f"document.querySelector('#latency').innerText.includes('Turn {number}:')",
            timeout=TURN_SECONDS * 1000,
        )

    def wait_for_status(self, text: str) -> None:
        """Wait until the status line contains `text`."""
        self.page.wait_for_function(
            f"document.querySelector('#status').innerText.includes({json.dumps(text)})",
            timeout=TURN_SECONDS * 1000,
        )

    def wait_for_sound(self, after: float) -> float:
        """Wait until the page plays audible sound after page time `after`; return that time."""
        handle = self.page.wait_for_function(
            f"(window.__probe.out.find(([t, rms]) => t > {after} && rms > {LOUD_RMS}) || [0])[0]",
            timeout=TURN_SECONDS * 1000,
        )
        return float(handle.json_value())

    def sound(self, after: float = 0.0) -> list[tuple[float, float]]:
        """(time, rms) of the page's output since `after`."""
        return [(t, rms) for t, rms in self.page.evaluate("window.__probe.out") if t > after]

    def events(self) -> list[list[Any]]:
        """The page client's log: [time, kind, detail]."""
        return list(self.page.evaluate("window.voxloop.events"))

    def wait_for_event(self, kind: str, count: int = 1) -> None:
        """Wait until the page client has logged `kind` at least `count` times."""
        self.page.wait_for_function(
            f"window.voxloop.events.filter(e => e[1] === {json.dumps(kind)}).length >= {count}",
            timeout=TURN_SECONDS * 1000,
        )

    def chat(self) -> list[str]:
        """The texts of the chat messages, in order."""
        return [m.inner_text().strip() for m in self.page.query_selector_all("#chat .message-row")]


@contextmanager
def open_browser(
    url: str, microphone: Path | None = None, password: str | None = None
) -> Iterator[Browser]:
    """A fresh headless Chromium on `url`, with `microphone` as its fake microphone; with a
    `password`, it logs in first, as a person would."""
    with open_browsers(url, microphone, password=password) as (browser,):
        yield browser


@contextmanager
def open_browsers(
    url: str, *microphones: Path | None, password: str | None = None
) -> Iterator[tuple[Browser, ...]]:
    """One fresh headless Chromium per microphone file (None: no file), each on `url`."""
    with sync_playwright() as playwright:
        launched, pages = [], []
        try:
            for microphone in microphones:
                args = list(CHROMIUM_ARGS)
                if microphone is not None:
                    args.append(f"--use-file-for-fake-audio-capture={microphone}%noloop")
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
                launched.append(browser)
                pages.append(_page(browser, url, password))
            yield tuple(pages)
        finally:
            for browser in launched:
                browser.close()


def _page(browser: Any, url: str, password: str | None = None) -> Browser:
    external: list[str] = []
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    context.route(
        re.compile(r"^(?!https?://127\.0\.0\.1[:/])(https?|wss?)://"),
        lambda route: (external.append(route.request.url), route.abort()),
    )
    context.add_init_script(path=str(PROBE))
    page = context.new_page()
    page.goto(url)
    if password is not None:  # Gradio's login form
        page.get_by_label("username").fill(PAGE_USER)
        page.get_by_label("password").fill(password)
        page.get_by_role("button", name="Login").click()
    page.wait_for_function(
        "window.voxloop && window.voxloop.events.some(e => e[1] === 'connected')"
    )
    return Browser(page, external)


def report(name: str, **figures: Any) -> None:
    """Append measured figures to the e2e report (copied into docs/benchmarks.md by hand)."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a") as f:
        f.write(json.dumps({"test": name, **figures}) + "\n")


def microphone_wav(path: Path, parts: list[float | Path]) -> Path:
    """A fake-microphone WAV: silences (seconds) and recordings, one after the other."""
    pieces = [
        np.zeros(int(p * audio.SAMPLE_RATE), np.float32) if isinstance(p, float) else audio.load(p)
        for p in parts
    ]
    path.write_bytes(audio.wav_bytes(audio.to_int16(np.concatenate(pieces)), audio.SAMPLE_RATE))
    return path


def loud_stretches(envelope: list[tuple[float, float]], gap_ms: float = 400) -> list[list[float]]:
    """[start, end] page times of the loud stretches of an RMS envelope."""
    segments: list[list[float]] = []
    for t, rms in envelope:
        if rms <= LOUD_RMS:
            continue
        if segments and t - segments[-1][1] <= gap_ms:
            segments[-1][1] = t
        else:
            segments.append([t, t])
    return [s for s in segments if s[1] - s[0] >= 100]
