"""The SQLite store: conversations, facts, summaries, isolation and crash safety."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from voxloop.config import MemorySettings
from voxloop.memory import Memory
from voxloop.turns import Turn


def _turn(user_text: str, reply: str = "Okay.") -> Turn:
    return Turn(user_text=user_text, reply=reply, voice="joe", timings_ms={"total": 1.0})


def test_history_survives_a_new_instance_and_sessions_are_separate(tmp_path: Path) -> None:
    db = tmp_path / "voxloop.db"
    Memory(db).add_turn("ada", _turn("My name is Ada.", "Hello Ada."))
    Memory(db).add_turn("bob", _turn("My name is Bob.", "Hello Bob."))
    recall = Memory(db).recall("ada")
    assert [m["content"] for m in recall.history] == ["My name is Ada.", "Hello Ada."]
    assert "Bob" not in str(recall)
    assert recall.notes == ["What you know about the user: The user's name is Ada."]


def test_facts_are_per_session_and_can_be_corrected_and_deleted(tmp_path: Path) -> None:
    memory = Memory(tmp_path / "voxloop.db")
    memory.add_turn("ada", _turn("I live in Paris. I'm vegetarian."))
    memory.add_turn("ada", _turn("I live in Rome."))  # replaces Paris
    memory.add_turn("bob", _turn("I live in Oslo."))
    facts = memory.facts("ada")
    assert [f.text for f in facts] == ["The user lives in Rome.", "The user is vegetarian."]
    memory.edit_fact("ada", facts[1].id, "The user is vegan.")
    memory.delete_fact("bob", facts[0].id)  # another session's id: nothing happens
    memory.delete_fact("ada", facts[0].id)
    assert [f.text for f in memory.facts("ada")] == ["The user is vegan."]
    assert [f.text for f in memory.facts("bob")] == ["The user lives in Oslo."]
    memory.forget_everything("ada")
    assert memory.facts("ada") == [] and memory.exchanges("ada") == []
    assert memory.facts("bob") and memory.exchanges("bob")


def test_new_conversation_and_reopening_an_older_one(tmp_path: Path) -> None:
    memory = Memory(tmp_path / "voxloop.db")
    memory.add_turn("s", _turn("first thread"))
    first = memory.current("s")
    memory.new_conversation("s")
    memory.add_turn("s", _turn("second thread"))
    assert memory.exchanges("s") == [("second thread", "Okay.")]
    assert [c.title for c in memory.conversations("s")] == ["second thread", "first thread"]
    memory.open_conversation("s", first)
    assert memory.exchanges("s") == [("first thread", "Okay.")]
    assert Memory(tmp_path / "voxloop.db").current("s") == first  # kept across restarts


def test_recall_keeps_the_most_recent_turns_that_fit(tmp_path: Path) -> None:
    memory = Memory(tmp_path / "voxloop.db", MemorySettings(history_tokens=30))
    for i in range(10):
        memory.add_turn("s", _turn(f"question {i}", f"answer {i}"))
    said = [m["content"] for m in memory.recall("s").history][::2]
    assert said and said == [f"question {i}" for i in range(10 - len(said), 10)]
    assert len(said) < 10


def test_compact_folds_older_turns_into_the_summary(tmp_path: Path) -> None:
    memory = Memory(tmp_path / "voxloop.db", MemorySettings(history_tokens=40, keep_turns=2))
    seen: list[tuple[str, str]] = []

    def summarize(previous: str, transcript: str) -> str:  # a stand-in for the model
        seen.append((previous, transcript))
        return f"summary {len(seen)}"

    for i in range(6):
        memory.add_turn("s", _turn(f"question number {i}", f"answer number {i}"))
    assert memory.compact("s", summarize)
    assert "question number 0" in seen[0][1] and "question number 3" in seen[0][1]
    assert "question number 4" not in seen[0][1]  # the last two turns stay word for word
    recall = memory.recall("s")
    assert recall.notes == ["Summary of the conversation so far: summary 1"]
    assert [m["content"] for m in recall.history][::2] == ["question number 4", "question number 5"]
    assert not memory.compact("s", summarize)  # within budget now
    for i in range(6, 9):
        memory.add_turn("s", _turn(f"question number {i}", f"answer number {i}"))
    assert memory.compact("s", summarize)
    assert seen[1][0] == "summary 1"  # the earlier summary is folded into the new one


def test_a_file_from_the_first_release_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "voxloop.db"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE conversations (id INTEGER PRIMARY KEY, session TEXT NOT NULL,"
            " created REAL NOT NULL);"
            "CREATE TABLE turns (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL,"
            " created REAL NOT NULL, user_text TEXT NOT NULL, reply TEXT NOT NULL,"
            " voice TEXT NOT NULL, language TEXT NOT NULL, timings_ms TEXT NOT NULL);"
            "INSERT INTO conversations VALUES (1, 'old', 0);"
            "INSERT INTO turns VALUES (1, 1, 0, 'hello', 'hi', 'joe', 'en', '{}');"
        )
    memory = Memory(path)
    assert memory.exchanges("old") == [("hello", "hi")]
    assert memory.recall("old").history


WRITER = """
import sys
from pathlib import Path
from voxloop.memory import Memory
from voxloop.turns import Turn
memory = Memory(Path(sys.argv[1]))
print("ready", flush=True)
i = 0
while True:
    i += 1
    memory.add_turn("s", Turn(user_text=f"My name is Ada {i}. " * 50, reply="x" * 5000))
"""


def test_kill_9_during_writes_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "voxloop.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    time.sleep(1.5)  # many transactions in flight, then the power goes
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = db.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    assert stored > 0
    memory = Memory(path)  # and voxloop opens it and goes on
    assert len(memory.exchanges("s")) == stored
    memory.add_turn("s", _turn("after the crash"))
    assert memory.exchanges("s")[-1][0] == "after the crash"
