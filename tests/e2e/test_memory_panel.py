"""The Memory panel in a real browser: the conversation survives a reload, and facts can be
listed, corrected and deleted, by one person only."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e_browser import Browser, open_browsers
from servers import running_server

TOLD = "My name is Ada. I am vegetarian."
NAME_FACT = "The user's name is Ada."
DIET_FACT = "The user is vegetarian."
CORRECTED = "The user is vegan."
STRANGER_FACT = "The user likes tea."


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("memory-server")
    with running_server(data_dir) as url:
        yield url, data_dir


def _facts(browser: Browser) -> list[str]:
    return [label.inner_text().strip() for label in browser.page.query_selector_all("#facts label")]


def _open_panel(browser: Browser) -> None:
    browser.page.click("#memory .label-wrap")
    browser.page.wait_for_selector("#facts", state="visible")


def _wait_for_facts(browser: Browser, predicate: str) -> None:
    """Wait until the facts listed satisfy a JS predicate on `facts` (an array of texts)."""
    browser.page.wait_for_function(
        "(() => { const facts = [...document.querySelectorAll('#facts label')]"
        f".map(l => l.innerText.trim()); return {predicate}; }})()",
        timeout=30_000,
    )


def _stored_facts(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "voxloop.db") as db:
        return [text for (text,) in db.execute("SELECT text FROM facts ORDER BY id")]


def test_memory_panel_lists_edits_and_deletes_facts(served, clearly_spoken) -> None:  # type: ignore[no-untyped-def]
    url, data_dir = served
    with open_browsers(url, None, None) as (ada, stranger):
        ada.upload(clearly_spoken(TOLD))  # espeak's "Ada" is "Aida" to Whisper, even as a file
        ada.page.click("#send")
        ada.wait_for_turn(1)

        # A reload continues the same conversation, from the store.
        ada.page.reload()
        ada.page.wait_for_function("document.querySelectorAll('#chat .message-row').length >= 2")
        assert "ada" in ada.chat()[0].lower()

        _open_panel(ada)
        _wait_for_facts(ada, f"facts.includes({NAME_FACT!r}) && facts.includes({DIET_FACT!r})")
        conversations = ada.page.inner_text("#conversations")
        assert "My name is Ada" in conversations

        # Edit: pick the fact, correct it, save.
        ada.page.click(f"#facts label:has-text({DIET_FACT!r})")
        ada.page.wait_for_function(
            f"document.querySelector('#fact_text textarea').value === {DIET_FACT!r}"
        )
        ada.page.fill("#fact_text textarea", CORRECTED)
        ada.page.click("#fact_save")
        _wait_for_facts(ada, f"facts.includes({CORRECTED!r}) && !facts.includes({DIET_FACT!r})")

        # Delete: the fact leaves the panel and the store.
        ada.page.click(f"#facts label:has-text({NAME_FACT!r})")
        ada.page.click("#fact_delete")
        _wait_for_facts(ada, f"!facts.includes({NAME_FACT!r})")
        assert _stored_facts(data_dir) == [CORRECTED]

        # Another browser is another person: its page, loaded again now that Ada has spoken,
        # shows nothing of hers, and the facts the server lists for it are its own only.
        stranger.page.reload()
        stranger.page.wait_for_function(
            "window.voxloop && window.voxloop.events.some(e => e[1] === 'connected')"
        )
        _open_panel(stranger)
        stranger.page.fill("#fact_text textarea", STRANGER_FACT)
        stranger.page.click("#fact_save")
        _wait_for_facts(stranger, f"facts.includes({STRANGER_FACT!r})")
        assert _facts(stranger) == [STRANGER_FACT]
        assert stranger.chat() == []
        assert "Ada" not in stranger.page.inner_text("#conversations")

        # Forget everything: Ada's memory only.
        ada.page.click("#forget")
        _wait_for_facts(ada, "facts.length === 0")
        assert _stored_facts(data_dir) == [STRANGER_FACT]
        assert ada.chat() == []
