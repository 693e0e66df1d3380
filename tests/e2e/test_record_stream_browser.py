"""The record button in a real browser: the microphone streams over the page's socket while
the person speaks, the live transcript shows, and the turn starts at stop with the transcript
ready (no transcription of the upload)."""

from __future__ import annotations

import time
from pathlib import Path

from e2e_browser import Browser, loud_stretches, microphone_wav, open_browser, report
from voxloop import audio
from voxloop.app.latency import STREAMED

# Kokoro jf_alpha's "France" is "friends" to Whisper in 2 of 4 captures through the page
# (docs/benchmarks.md, hands-free); "Japan" was right in 4 of 4.
QUESTION = "What is the capital of Japan?"
LEAD_SECONDS = 1.0  # silence on the fake microphone before the question
AFTER_SPEECH_MS = 1200  # the person clicks stop a little after their last word
SPOKEN_REPLY_MS = 1000  # a spoken reply lasts at least this long
PLAYED_WITHIN_SECONDS = 10  # after the turn ended, its audio has played by then


def _first_audio_ms(latency_text: str) -> float:
    return float(latency_text.split("first audio")[1].split("ms")[0])


def test_recording_is_transcribed_while_spoken_and_answered_at_stop(
    server: str,
    clearly_spoken,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    question = clearly_spoken(QUESTION)
    question_ms = len(audio.load(question)) / audio.SAMPLE_RATE * 1000
    microphone = microphone_wav(tmp_path / "question.wav", [LEAD_SECONDS, question, 6.0])
    with open_browser(server, microphone=microphone) as browser:
        browser.page.click("#audio_in button.record-button")
        browser.wait_for_event("record_on")
        browser.page.wait_for_timeout(LEAD_SECONDS * 1000 + question_ms + AFTER_SPEECH_MS)
        stopped = browser.now()
        browser.page.click("#audio_in button.stop-button")
        heard_at = browser.wait_for_sound(after=stopped)  # no click on Send
        browser.wait_for_turn(1)
        browser.wait_for_event("playback_ended")
        live = [text for t, kind, text in browser.events() if kind == "partial" and t < stopped]
        assert any("capital" in text.lower() for text in live), f"no live transcript: {live}"
        user, assistant = browser.chat()
        assert "capital of japan" in user.lower() and "tokyo" in assistant.lower()
        # A busy machine may leave a gap between two chunks, where playback ends a first time.
        played = _played_for(browser, stopped, SPOKEN_REPLY_MS)
        assert sum(end - start for start, end in played) > SPOKEN_REPLY_MS, played
        latency = browser.page.inner_text("#latency")
        assert STREAMED in latency, f"the upload was transcribed again: {latency}"
        pipeline_ms = _first_audio_ms(latency)
        report(
            "record-stream",
            click_on_stop_to_sound_ms=round(heard_at - stopped),
            pipeline_first_audio_ms=pipeline_ms,
            rest_ms=round(heard_at - stopped - pipeline_ms),
        )


def _played_for(browser: Browser, since: float, ms: float) -> list[list[float]]:
    """The loud stretches the page played since `since`, once they last `ms` or the reply's
    audio has had time to play."""
    deadline = time.monotonic() + PLAYED_WITHIN_SECONDS
    while True:
        played = loud_stretches(browser.sound(since))
        if sum(end - start for start, end in played) > ms or time.monotonic() > deadline:
            return played
        browser.page.wait_for_timeout(200)
