"""A long recording uploaded in the page: progress in the status line while it is read, then a
spoken summary that tells what the recording says."""

from __future__ import annotations

import re
from pathlib import Path

from e2e_browser import LOUD_RMS, open_browser
from voxloop import audio
from voxloop.config import load_settings
from voxloop_bench import recordings

# Words only the recording could have given (recordings.long_recording: the two_cities reading
# and a Sense and Sensibility line, repeated), matched as whole words.
RECORDING_WORDS = re.compile(
    r"\b(wisdom|foolish\w*|belief|incredul\w*|epoch|despair|heaven|dickens|two cities"
    r"|best of times|worst of times|dashwood|austen)\b"
)
EXTRA_SECONDS = 5  # over the long-recording threshold
SUMMARY_SECONDS = 600  # transcribing a minute and summarizing it on a busy 2-core machine
MIN_SPOKEN_MS = 1000
# Every text the status line shows, in order (a turn changes it faster than a test polls).
WATCH_STATUS = """() => {
  window.__statuses = [];
  const status = document.querySelector('#status');
  new MutationObserver(() => window.__statuses.push(status.innerText.trim()))
    .observe(status, { subtree: true, childList: true, characterData: true });
}"""


def test_a_long_recording_is_summarized_aloud_with_progress(server: str, tmp_path: Path) -> None:
    seconds = load_settings().longform.min_seconds + EXTRA_SECONDS
    recording = recordings.long_recording(tmp_path / "long.wav", seconds)
    assert audio.duration(recording, max_seconds=3600, max_megabytes=100) > seconds - 1
    with open_browser(server) as browser:
        browser.upload(recording)
        browser.page.evaluate(WATCH_STATUS)
        clicked = browser.now()
        browser.page.click("#send")
        browser.page.wait_for_function(
            "document.querySelector('#latency').innerText.includes('Turn 1:')",
            timeout=SUMMARY_SECONDS * 1000,
        )
        browser.wait_for_event("playback_ended")
        statuses = browser.page.evaluate("window.__statuses")
        done = [int(m) for s in statuses for m in re.findall(r"⏳.* (\d+)%", s)]
        assert done and max(done) > min(done), f"no progress in the status line: {statuses}"
        _user, summary = browser.chat()[-2:]
        assert RECORDING_WORDS.search(summary.lower()), summary
        loud = [t for t, rms in browser.sound(clicked) if rms > LOUD_RMS]
        assert loud and loud[-1] - loud[0] > MIN_SPOKEN_MS, "the summary was not spoken"
