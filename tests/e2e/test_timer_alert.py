"""A timer set by voice in the page goes off aloud in the page, with the person's words kept."""

from __future__ import annotations

from e2e_browser import LOUD_RMS, open_browser

ALERT = "Time is up: your timer for 4 seconds is done."


def test_a_timer_set_by_voice_goes_off_aloud_in_the_page(server: str, clearly_spoken) -> None:  # type: ignore[no-untyped-def]
    with open_browser(server) as browser:
        browser.upload(clearly_spoken("Set a timer for four seconds."))
        browser.page.click("#send")
        browser.wait_for_turn(1)
        _user, assistant = browser.chat()
        assert "timer for 4 seconds" in assistant
        browser.wait_for_event("playback_ended")
        browser.wait_for_event("alert")
        alerted_at, _kind, text = next(e for e in browser.events() if e[1] == "alert")
        assert text == ALERT
        assert ALERT in browser.page.inner_text("#live_state")
        browser.wait_for_event("playback_ended", count=2)  # the alert was played to its end
        loud = [t for t, rms in browser.sound(alerted_at) if rms > LOUD_RMS]
        assert loud and loud[-1] - loud[0] > 1000, "the alert was not heard"
