"""A server with an API key: the page asks for a login, then works as before, its reply
audio arriving over the socket that only a logged-in page may open."""

from __future__ import annotations

from pathlib import Path

import httpx

from e2e_browser import open_browser
from servers import running_server

KEY = "a-long-random-key"


def test_page_asks_for_a_login_then_answers(spoken, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with running_server(tmp_path, VOXLOOP_SERVER__API_KEY=KEY) as url:
        assert httpx.get(f"{url}gradio_api/login_check").status_code == 401
        with open_browser(url, password=KEY) as browser:
            browser.upload(spoken("What is the capital of France?"))
            clicked = browser.now()
            browser.page.click("#send")
            browser.wait_for_sound(after=clicked)  # played from the socket: it was let in
            browser.wait_for_turn(1)
            assert "paris" in browser.chat()[-1].lower()
            assert browser.external == []
