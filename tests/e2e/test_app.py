"""The voice chat page in a real browser: upload, microphone, Stop, bad input, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page

from e2e_browser import LOUD_RMS, open_browser, report
from servers import running_server
from voxloop import audio
from voxloop.app import SEGMENTS

QUESTION = "What is the capital of France?"
LONG_QUESTION = "Tell me about the city of Paris in five sentences."
# Stop is about time: the sound must stop at once. The bound is generous for a shared 2-core
# machine; the measured figure goes to build/e2e-latency.jsonl (the benchmarks' page figures).
STOP_WITHIN_MS = 1500
PLAYING_BEFORE_CLICK_MS = 250  # loud output this close before the click: it was playing then
# Magic 8 Ball's rule for a question it will not answer; the default assistant answers it.
# Said by Kokoro: espeak's is "is the moon may not tease" to Whisper, which the oracle answers
# with a proverb ("Moon may not tease.").
ORACLE_QUESTION = "Is the moon made of cheese?"
ORACLE_REPLY = "foolish questions get foolish answers"
# The sample rate in the WAV header of the recording the page uploaded (its download link).
RECORDING_SAMPLE_RATE = """async () => {
  const link = document.querySelector("#audio_in a[data-testid='download-link']");
  const wav = await (await fetch(link.href)).arrayBuffer();
  return new DataView(wav).getUint32(24, true);
}"""


def _silent_after(sound: list[tuple[float, float]], since: float) -> float:
    """Page time from `since` until the output went quiet for good (0 if it was quiet)."""
    loud = [t for t, rms in sound if rms > LOUD_RMS]
    return max(0.0, max(loud) - since) if loud else 0.0


def _playing_at(sound: list[tuple[float, float]], at: float) -> bool:
    """Whether the page was playing audible sound just before page time `at`."""
    return any(at - PLAYING_BEFORE_CLICK_MS <= t <= at and rms > LOUD_RMS for t, rms in sound)


def _plotted_bars(page: Page) -> list[str]:
    """The latency plot's bars, as Vega labels them ('turn: 1; ms: 180; stage: ...')."""
    bars = page.query_selector_all("#latency_plot svg [aria-roledescription='bar']")
    return [bar.get_attribute("aria-label") or "" for bar in bars]


def _played_ms(sound: list[tuple[float, float]]) -> float:
    loud = [t for t, rms in sound if rms > LOUD_RMS]
    return (loud[-1] - loud[0]) if loud else 0.0


def _first_audio_ms(latency_text: str) -> float:
    return float(latency_text.split("first audio")[1].split("ms")[0])


@pytest.fixture(scope="module")
def question_wav(spoken) -> Path:  # type: ignore[no-untyped-def]
    return spoken(QUESTION)  # type: ignore[no-any-return]


def test_upload_is_answered_in_text_and_streamed_speech(server: str, question_wav: Path) -> None:
    with open_browser(server) as browser:
        browser.upload(question_wav)
        clicked = browser.now()
        browser.page.click("#send")
        heard_at = browser.wait_for_sound(after=clicked)
        browser.wait_for_turn(1)
        browser.wait_for_event("playback_ended")
        user, assistant = browser.chat()
        assert "capital of france" in user.lower()
        assert "paris" in assistant.lower()
        assert _played_ms(browser.sound(clicked)) > 1000, "the spoken reply was not played"
        # the visible player holds the whole reply
        assert browser.page.query_selector(
            "#audio_out audio, #audio_out [data-testid='waveform-Reply']"
        )
        latency = browser.page.inner_text("#latency")
        assert "STT" in latency and "first token" in latency and "total" in latency
        # the plot has this turn's bar: one segment per stage of the turn
        browser.page.wait_for_selector("#latency_plot svg [aria-roledescription='bar']")
        bars = _plotted_bars(browser.page)
        assert all("turn: 1" in bar for bar in bars), bars
        assert {stage for stage in SEGMENTS.values() if any(stage in bar for bar in bars)} == set(
            SEGMENTS.values()
        ), bars
        assert browser.external == [], "the page tried to reach the internet"
        pipeline_ms = _first_audio_ms(latency)
        report(
            "upload-websocket",
            click_to_sound_ms=round(heard_at - clicked),
            pipeline_first_audio_ms=pipeline_ms,
            browser_overhead_ms=round(heard_at - clicked - pipeline_ms),
        )


def test_microphone_turn_starts_when_recording_stops(server: str, spoken, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    question = audio.load(spoken(QUESTION))
    lead = np.zeros(audio.SAMPLE_RATE // 2, np.float32)  # the fake microphone starts at once
    microphone = tmp_path / "microphone.wav"
    microphone.write_bytes(audio.wav_bytes(audio.to_int16(np.concatenate([lead, question])), 16000))
    with open_browser(server, microphone=microphone) as browser:
        browser.page.click("#audio_in button.record-button")
        browser.page.wait_for_timeout(len(question) / 16 + 1500)
        stopped = browser.now()
        browser.page.click("#audio_in button.stop-button")
        browser.wait_for_sound(after=stopped)  # no click on Send: the turn started by itself
        browser.wait_for_turn(1)
        user, assistant = browser.chat()
        assert "capital of france" in user.lower() and "paris" in assistant.lower()
        # Recorded at speech to text's rate: less for the page to encode and upload at stop.
        assert browser.page.evaluate(RECORDING_SAMPLE_RATE) == audio.SAMPLE_RATE
        # The upload went out after the reply's first sound (the turn had started at stop):
        # held until then, or begun later by Gradio's recorder.
        kinds = [kind for _time, kind, _detail in browser.events()]
        sent = [kind for kind in kinds if kind in ("upload_sent", "upload_released")]
        assert sent and "first_chunk" in kinds, " ".join(kinds)
        assert kinds.index(sent[0]) > kinds.index("first_chunk"), " ".join(kinds)


def test_stop_silences_the_answer_and_the_app_keeps_working(
    server: str, spoken, question_wav: Path
) -> None:  # type: ignore[no-untyped-def]
    with open_browser(server) as browser:
        browser.upload(spoken(LONG_QUESTION))
        browser.page.click("#send")
        heard_at = browser.wait_for_sound(after=browser.now())
        browser.page.wait_for_timeout(500)
        stop_at = browser.now()
        browser.page.click("#stop")
        browser.wait_for_status("Stopped.")
        browser.page.wait_for_timeout(STOP_WITHIN_MS + 1500)
        sound = browser.sound(heard_at)
        assert _playing_at(sound, stop_at), "the answer was no longer playing at the click"
        went_quiet = _silent_after(sound, stop_at)
        assert went_quiet < STOP_WITHIN_MS, went_quiet
        report("stop", silent_after_click_ms=round(went_quiet))
        # a new question works normally afterwards
        browser.upload(question_wav)
        browser.page.click("#send")
        browser.wait_for_turn(2)
        assert "paris" in browser.chat()[-1].lower()


def test_bad_upload_gets_a_readable_message(
    server: str, question_wav: Path, tmp_path: Path
) -> None:
    not_audio = tmp_path / "shopping.wav"
    not_audio.write_text("eggs, milk, bread\n" * 40)
    with open_browser(server) as browser:
        browser.upload(not_audio)  # it is in the page's input, as any file
        browser.page.click("#send")
        browser.wait_for_status("⚠️")
        status = browser.page.inner_text("#status")
        # the server read the file and said what is wrong with it (not "record or upload first")
        assert "not audio" in status, status
        assert "Traceback" not in browser.page.content()
        browser.upload(question_wav)
        browser.page.click("#send")
        browser.wait_for_turn(1)
        assert "paris" in browser.chat()[-1].lower()


def test_voice_and_persona_choices(server: str, clearly_spoken) -> None:  # type: ignore[no-untyped-def]
    with open_browser(server) as browser:
        browser.page.click("#persona input")
        browser.page.get_by_role("option", name="Magic 8 Ball").click()
        browser.page.wait_for_function(
            "document.querySelector('#system_prompt textarea').value.includes('Magic 8 Ball')"
        )
        browser.page.click("#voice input")
        browser.page.get_by_role("option", name="jf_alpha (female").click()
        browser.upload(clearly_spoken(ORACLE_QUESTION))
        browser.page.click("#send")
        browser.wait_for_turn(1)
        replies = [e[2] for e in browser.events() if e[1] == "reply"]
        assert replies and replies[-1]["sample_rate"] == 24000, "Kokoro speaks at 24 kHz"
        assert ORACLE_REPLY in browser.chat()[-1].lower(), "the persona did not reach the model"


def test_gradio_streamed_player_delay(tmp_path: Path, question_wav: Path) -> None:
    """Gradio's own streamed player (HLS): measured so the WebSocket path can be compared."""
    with (
        running_server(tmp_path, VOXLOOP_SERVER__PLAYBACK="gradio") as url,
        open_browser(url) as browser,
    ):
        browser.upload(question_wav)
        clicked = browser.now()
        browser.page.click("#send")
        heard_at = browser.wait_for_sound(after=clicked)
        browser.wait_for_turn(1)
        pipeline_ms = _first_audio_ms(browser.page.inner_text("#latency"))
        assert "paris" in browser.chat()[-1].lower()
        report(
            "upload-gradio-hls",
            click_to_sound_ms=round(heard_at - clicked),
            pipeline_first_audio_ms=pipeline_ms,
            browser_overhead_ms=round(heard_at - clicked - pipeline_ms),
        )
