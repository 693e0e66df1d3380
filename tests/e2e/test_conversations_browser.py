"""Conversations in the page: a fact typed in the Memory panel is used, New conversation starts
an empty one, and a past conversation picked in the panel comes back and goes on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e_browser import Browser, open_browser
from servers import running_server

TYPED_FACT = "The user's name is Grace."
FIRST_QUESTION = "What is the capital of France?"
NAME_QUESTION = "What is my name?"
FOLLOW_UP = "What is the capital of Italy?"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("conversations-server")
    with running_server(data_dir) as url:
        yield url, data_dir


def _ask(browser: Browser, question: Path, turn: int) -> None:
    browser.upload(question)
    browser.page.click("#send")
    browser.wait_for_turn(turn)


def _conversation_choices(browser: Browser) -> list[str]:
    labels = browser.page.query_selector_all("#conversations label")
    return [label.inner_text().strip() for label in labels]


def _turns_per_conversation(data_dir: Path) -> list[tuple[str, int]]:
    """(first thing said, number of turns) of each stored conversation, oldest first."""
    with sqlite3.connect(data_dir / "voxloop.db") as db:
        rows = db.execute(
            "SELECT (SELECT user_text FROM turns WHERE conversation_id = c.id ORDER BY id LIMIT 1),"
            " (SELECT COUNT(*) FROM turns WHERE conversation_id = c.id)"
            " FROM conversations c ORDER BY c.id"
        ).fetchall()
    return [(first or "", count) for first, count in rows if count]


def test_typed_fact_new_conversation_and_reopening(served, spoken) -> None:  # type: ignore[no-untyped-def]
    url, data_dir = served
    with open_browser(url) as browser:
        page = browser.page
        page.click("#memory .label-wrap")
        page.wait_for_selector("#facts", state="visible")

        # A fact typed in the panel is listed, stored and used in the answers.
        page.fill("#fact_text textarea", TYPED_FACT)
        page.click("#fact_save")
        page.wait_for_selector(f"#facts label:has-text({TYPED_FACT!r})")
        _ask(browser, spoken(FIRST_QUESTION), 1)
        assert "paris" in browser.chat()[-1].lower()

        # New conversation: an empty chat; the first one waits in the panel.
        page.click("#clear")
        browser.wait_for_status("New conversation.")
        assert browser.chat() == []
        _ask(browser, spoken(NAME_QUESTION), 1)
        assert "grace" in browser.chat()[-1].lower(), "the typed fact was not used"
        assert len(browser.chat()) == 2, "the new conversation holds the old one's turns"
        page.wait_for_function("document.querySelectorAll('#conversations label').length >= 2")

        # Reopening the first conversation brings back its turns, and the next turn joins it.
        first = next(c for c in _conversation_choices(browser) if "capital of france" in c.lower())
        page.click(f"#conversations label:has-text({first!r})")
        browser.wait_for_status("Conversation reopened.")
        chat = browser.chat()
        assert len(chat) == 2 and "capital of france" in chat[0].lower(), chat
        _ask(browser, spoken(FOLLOW_UP), 1)
        assert "italy" in browser.chat()[2].lower() and len(browser.chat()) == 4
        stored = _turns_per_conversation(data_dir)
        assert [n for _, n in stored] == [2, 1], stored
        assert "capital of france" in stored[0][0].lower() and "name" in stored[1][0].lower()
