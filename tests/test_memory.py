"""Conversation storage in SQLite."""

from __future__ import annotations

from pathlib import Path

from voxloop.memory import Memory
from voxloop.pipeline import Turn


def _turn(user_text: str, reply: str) -> Turn:
    return Turn(user_text=user_text, reply=reply, voice="joe", timings_ms={"total": 1.0})


def test_history_survives_a_new_instance_and_sessions_are_separate(tmp_path: Path) -> None:
    db = tmp_path / "voxloop.db"
    Memory(db).add_turn("ada", _turn("My name is Ada.", "Hello Ada."))
    Memory(db).add_turn("bob", _turn("My name is Bob.", "Hello Bob."))
    history = Memory(db).history("ada")
    assert [m["content"] for m in history] == ["My name is Ada.", "Hello Ada."]
    assert "Bob" not in str(history)


def test_history_keeps_the_most_recent_turns_in_order(tmp_path: Path) -> None:
    memory = Memory(tmp_path / "voxloop.db")
    for i in range(10):
        memory.add_turn("s", _turn(f"question {i}", f"answer {i}"))
    history = memory.history("s", turns=3)
    assert [m["content"] for m in history][::2] == ["question 7", "question 8", "question 9"]
