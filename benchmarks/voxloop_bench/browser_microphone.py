"""Recordings as the page's microphone sends them: played through Chromium's fake microphone
(with the browser's echo cancellation, noise suppression and gain control) and the page's own
capture code (voxloop.js: its worklet resamples to 16 kHz), as hands-free mode streams them.

One Chromium plays every clip in turn, with a second of silence between clips, in real time;
the page's frames are caught by a stand-in WebSocket, lined up with what was played by cross
correlation, and cut back into clips.
"""

from __future__ import annotations

import base64
import tempfile
import time
from pathlib import Path

import numpy as np

from voxloop.errors import VoxloopError

SAMPLE_RATE = 16000
GAP_SECONDS = 1.0  # silence between clips: the gain control and suppressor settle as in a pause
# Silence before the first clip: the page may start sending a moment after playback starts.
LEAD_SECONDS = 3.0
MARGIN_SECONDS = 0.25  # kept either side of a clip when it is cut back out
TAKE_SECONDS = 2  # how often the frames are taken out of the page
ALIGN_SECONDS = 30  # the stretch of the start that finds where playback began in the capture
# A clip is in place when the capture's loudness follows the original's, frame by frame (20 ms);
# samples themselves do not line up that closely (gain control, noise suppression). Every real
# clip of the bench's set measured 0.85 or more; a late or misaligned capture falls far below.
MIN_LOUDNESS_CORRELATION = 0.7
LOUDNESS_FRAME = 320
CHROMIUM = "/usr/bin/chromium"
# Headless, offline (nothing fetched in the background), sound without a click, and a fake
# microphone: shared with the browser tests (tests/e2e/e2e_browser.py).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
PAGE_URL = "http://127.0.0.1:9/"  # answered by the route below: a secure origin, no server
PAGE = '<button id="talk">Start conversation</button><div id="live_state"></div>'
# Stands in for the page's socket: keeps the binary frames voxloop.js sends.
SOCKET = """
window.__frames = [];
window.WebSocket = class {
  static OPEN = 1;
  constructor(url) { this.readyState = 1; setTimeout(() => this.onopen && this.onopen(), 0); }
  send(data) {
    if (data instanceof ArrayBuffer) window.__frames.push(new Int16Array(data.slice(0)));
  }
  close() {}
};
window.__take = () => {
  const frames = window.__frames; window.__frames = [];
  let total = 0; for (const f of frames) total += f.length;
  const all = new Int16Array(total); let at = 0;
  for (const f of frames) { all.set(f, at); at += f.length; }
  const bytes = new Uint8Array(all.buffer); let text = "";
  for (let i = 0; i < bytes.length; i += 32768) {
    text += String.fromCharCode(...bytes.subarray(i, i + 32768));
  }
  return btoa(text);
};
"""


def capture(clips: list[np.ndarray], page_script: str | None = None) -> list[np.ndarray]:
    """Each clip (16 kHz float32) as the page's microphone capture sent it; `page_script`
    replaces the shipped voxloop.js (to compare a change to it)."""
    from voxloop import audio

    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), np.float32)
    lead = np.zeros(int(LEAD_SECONDS * SAMPLE_RATE), np.float32)
    starts, pieces, at = [], [lead], len(lead)
    for clip in clips:
        starts.append(at)
        pieces += [clip, gap]
        at += len(clip) + len(gap)
    played = np.concatenate(pieces)
    with tempfile.TemporaryDirectory() as folder:
        track = Path(folder) / "microphone.wav"
        track.write_bytes(audio.wav_bytes(audio.to_int16(played), SAMPLE_RATE))
        sent = _record(track, len(played) / SAMPLE_RATE + 2 * GAP_SECONDS, page_script)
    lag = _lag(played, sent)
    margin = int(MARGIN_SECONDS * SAMPLE_RATE)
    heard = [
        sent[max(0, lag + start - margin) : lag + start + len(clip) + margin]
        for start, clip in zip(starts, clips, strict=True)
    ]
    out_of_place = [
        number
        for number, (clip, caught) in enumerate(zip(clips, heard, strict=True))
        if loudness_correlation(clip, caught[margin:]) < MIN_LOUDNESS_CORRELATION
    ]
    if out_of_place:
        raise VoxloopError(
            f"The browser's capture does not follow what was played for {len(out_of_place)} of "
            f"{len(clips)} clips (first: number {out_of_place[0]}); the microphone may have "
            "started late. Run the bench again."
        )
    return heard


def loudness_correlation(original: np.ndarray, sent: np.ndarray) -> float:
    """How closely the loudness of `sent` follows `original`'s, frame by frame (1: exactly)."""
    played_loudness, sent_loudness = _loudness(original), _loudness(sent)
    frames = min(len(played_loudness), len(sent_loudness))
    if frames < 2 or not sent_loudness[:frames].any():
        return 0.0
    return float(np.corrcoef(played_loudness[:frames], sent_loudness[:frames])[0, 1])


def _loudness(samples: np.ndarray) -> np.ndarray:
    frames = samples[: len(samples) // LOUDNESS_FRAME * LOUDNESS_FRAME]
    return np.sqrt((frames.reshape(-1, LOUDNESS_FRAME) ** 2).mean(axis=1))


def page_script() -> str:
    """The page client as it ships (voxloop/static/voxloop.js)."""
    from voxloop import assets

    return (assets.package_dir("voxloop") / "static" / "voxloop.js").read_text()


def _record(track: Path, seconds: float, script: str | None) -> np.ndarray:
    """What the page sends over its socket while Chromium plays `track` as the microphone."""
    from playwright.sync_api import sync_playwright

    from voxloop import audio
    from voxloop_bench import progress_bar

    if not Path(CHROMIUM).exists():
        raise VoxloopError("The browser column needs Chromium: `apt-get install chromium`.")
    script = script or page_script()
    chunks = []
    with sync_playwright() as playwright:
        args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={track}%noloop"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context()
            context.add_init_script(SOCKET)
            context.route(PAGE_URL, lambda r: r.fulfill(body=PAGE, content_type="text/html"))
            page = context.new_page()
            page.goto(PAGE_URL)
            page.add_script_tag(content=script)
            page.click("#talk")
            with progress_bar("stt capturing clips through Chromium", "s", round(seconds)) as bar:
                for _ in range(round(seconds / TAKE_SECONDS)):
                    time.sleep(TAKE_SECONDS)
                    chunks.append(base64.b64decode(page.evaluate("window.__take()")))
                    bar.update(TAKE_SECONDS)
            time.sleep(TAKE_SECONDS)
            chunks.append(base64.b64decode(page.evaluate("window.__take()")))
        finally:
            browser.close()
    return audio.from_int16(b"".join(chunks))


def _lag(played: np.ndarray, sent: np.ndarray) -> int:
    """Where `played` begins in `sent` (samples; negative if `sent` began later), by cross
    correlation of their starts."""
    length = min(len(played), len(sent), ALIGN_SECONDS * SAMPLE_RATE)
    if length == 0:
        raise VoxloopError("The browser sent no microphone audio.")
    reference = played[:length]
    size = 1 << int(np.ceil(np.log2(len(sent) + length)))
    correlation = np.fft.irfft(
        np.fft.rfft(sent, size) * np.conj(np.fft.rfft(reference, size)), size
    )
    # The lag is negative when the page began sending after playback began (a slow start on a
    # busy machine): those lags sit at the end of the circular correlation.
    lags = np.concatenate([np.arange(len(sent)), np.arange(1 - length, 0)])
    return int(lags[np.argmax(correlation[lags % size])])
