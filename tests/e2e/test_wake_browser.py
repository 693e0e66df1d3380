"""The page's wake checkbox: ticked, hands-free talk sleeps until the wake phrase, stays awake
for a while after each question, and falls asleep again after `awake_seconds` of quiet."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from e2e_browser import Browser, loud_stretches, microphone_wav, open_browser
from servers import running_server
from voxloop import audio

AWAKE_SECONDS = 25  # short, so the test hears it fall asleep; long against a slow listener
ASLEEP_QUESTION = "What is the capital of France?"
WAKE_QUESTION = "Hey computer. How many days are there in a week?"
AWAKE_QUESTION = "What is the capital of Italy?"
# Unlike the reply before it, which the echo filter would take it for.
LATE_QUESTION = "How far away is the moon?"
AWAKE_GAP_SECONDS = 10.0  # well inside the awake window
LATE_GAP_SECONDS = AWAKE_SECONDS + 12.0  # well past it
UTTERANCE_GAP_MS = 2000  # joins "Hey computer." and its question into one stretch
WHOLE_FILE_MS = 150_000
HEARD = ("asleep", "thinking", "listening")  # what an utterance ends in: ignored, answered, or not


def _state_after(browser: Browser, since: float, values: tuple[str, ...]) -> str:
    """Wait for the first hands-free state in `values` after page time `since`; return it."""
    wanted = json.dumps(list(values))
    handle = browser.page.wait_for_function(
        f"(window.voxloop.events.find(e => e[0] > {since} && e[1] === 'state'"
        f" && {wanted}.includes(e[2])) || [0, 0, null])[2]",
        timeout=WHOLE_FILE_MS,
    )
    return str(handle.json_value())


def test_ticked_it_sleeps_until_the_phrase_then_for_a_while_answers_without_it(
    clearly_spoken: Callable[[str], Path], tmp_path: Path
) -> None:
    parts: list[float | Path] = [
        1.0,
        clearly_spoken(ASLEEP_QUESTION),
        6.0,
        clearly_spoken(WAKE_QUESTION),
        AWAKE_GAP_SECONDS,
        clearly_spoken(AWAKE_QUESTION),
        LATE_GAP_SECONDS,
        clearly_spoken(LATE_QUESTION),
        8.0,
    ]
    microphone = microphone_wav(tmp_path / "wake.wav", parts)
    with (
        running_server(
            tmp_path / "data", VOXLOOP_HANDSFREE__AWAKE_SECONDS=str(AWAKE_SECONDS)
        ) as url,
        open_browser(url, microphone=microphone) as browser,
    ):
        browser.page.check("#wake input")
        browser.page.click("#talk")
        browser.wait_for_event("handsfree_on")
        # the first question, without the phrase, is not answered
        assert _state_after(browser, 0, HEARD) == "asleep"
        browser.page.wait_for_function(
            "document.querySelectorAll('#chat .message-row').length >= 4", timeout=WHOLE_FILE_MS
        )
        # the last question comes after the awake window has closed
        browser.page.wait_for_function(
            f"window.__probe.mic.length && performance.now() > window.__probe.mic[0][0]"
            f" + {len(audio.load(microphone)) / audio.SAMPLE_RATE * 1000}",
            timeout=WHOLE_FILE_MS,
        )
        said = loud_stretches(
            [tuple(x) for x in browser.page.evaluate("window.__probe.mic")], UTTERANCE_GAP_MS
        )
        assert len(said) == 4, said
        assert _state_after(browser, said[3][0], HEARD) == "asleep"
        browser.page.wait_for_timeout(3000)  # an answer, if one started, would show by now
        chat = [message.lower() for message in browser.chat()]
        assert len(chat) == 4, chat
        assert "how many days" in chat[0] and ("seven" in chat[1] or "7" in chat[1]), chat
        assert "italy" in chat[2] and "rome" in chat[3], chat
        assert not any("france" in m or "moon" in m for m in chat), chat
