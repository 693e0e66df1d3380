"""Crashes and memory: `voxloop serve` killed in the middle of a turn leaves an intact
database that lost at most that turn, and a turn is stored with its facts or not at all."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from servers import serve_process, turn_events
from voxloop.config import load_settings
from voxloop.memory import Memory
from voxloop.turns import Turn

SESSION = "crash"
STATED = "My name is Anneliese. I live in Ghent."
KILLED = "My favourite colour is green. Tell me a long story about a dragon and a knight."
STATED_FACTS = ["The user's name is Anneliese.", "The user lives in Ghent."]


def _integrity(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def test_killing_the_server_mid_turn_loses_at_most_that_turn(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serve_process(data_dir) as (url, process):
        assert turn_events(url, text=STATED, session=SESSION)[-1]["type"] == "done"
        form = {"text": KILLED, "session": SESSION}
        with httpx.stream("POST", f"{url}v1/voxloop/turn", data=form, timeout=120) as response:
            for line in response.iter_lines():
                if '"type": "audio"' in line:  # the reply is being spoken: kill it now
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=30)
                    break
        assert process.returncode == -signal.SIGKILL, "the server was killed mid-turn"
    path = load_settings(data_dir=data_dir).memory_file
    assert _integrity(path) == "ok"
    memory = Memory(path)
    stored = memory.exchanges(SESSION)
    facts = [fact.text for fact in memory.facts(SESSION)]
    assert stored[0][0] == STATED and len(stored) <= 2, stored  # at most the killed turn lost
    assert all(fact in facts for fact in STATED_FACTS), facts
    killed_turn_kept = len(stored) == 2
    killed_fact_kept = any("green" in fact for fact in facts)
    assert killed_fact_kept == killed_turn_kept, "a turn and its facts go together"
    memory.add_turn(SESSION, Turn(user_text="Hello again.", reply="Hello, Anneliese."))
    assert memory.exchanges(SESSION)[-1] == ("Hello again.", "Hello, Anneliese.")


def test_a_turn_and_its_facts_are_stored_together_or_not_at_all(tmp_path: Path) -> None:
    memory = Memory(tmp_path / "voxloop.db")
    turn = Turn(user_text=STATED, reply="Nice to meet you, Anneliese.")
    with sqlite3.connect(memory.path) as db:  # the facts cannot be written: a failing disk
        db.execute(
            "CREATE TRIGGER lost BEFORE INSERT ON facts BEGIN SELECT RAISE(ABORT, 'lost'); END"
        )
    with pytest.raises(sqlite3.Error):
        memory.add_turn(SESSION, turn)
    assert memory.exchanges(SESSION) == [] and memory.facts(SESSION) == []
    with sqlite3.connect(memory.path) as db:
        db.execute("DROP TRIGGER lost")
    memory.add_turn(SESSION, turn)
    assert memory.exchanges(SESSION) == [(turn.user_text, turn.reply)]
    assert [fact.text for fact in memory.facts(SESSION)] == STATED_FACTS
    assert _integrity(memory.path) == "ok"
