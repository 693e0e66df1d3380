"""The conversation store, embedded (SQLite) and shared (PostgreSQL): conversations, facts,
summaries, isolation, replicas writing and compacting at once, and crash safety."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from voxloop.config import MemorySettings
from voxloop.errors import StoreUnavailable, VoxloopError
from voxloop.memory import Memory
from voxloop.prompts import CONVERSATION_SUMMARY_NOTE, estimate_tokens
from voxloop.turns import Turn

Store = Callable[..., Memory]  # (MemorySettings fields) -> a new Memory on the test's store
RESTART_DEADLINE_SECONDS = 60  # a store that has not resumed by then has not resumed by itself


def _turn(user_text: str, reply: str = "Okay.") -> Turn:
    return Turn(user_text=user_text, reply=reply, voice="joe", timings_ms={"total": 1.0})


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """store(**settings) -> a Memory on this test's own store: a new SQLite file, or a new
    database on the real PostgreSQL server. Every call is a new instance, as a restart or
    another replica would make."""
    url = request.getfixturevalue("postgres").create_database() if request.param != "sqlite" else ""

    def memory(**settings: Any) -> Memory:
        return Memory(tmp_path / "voxloop.db", MemorySettings(url=url, **settings))

    return memory


def test_history_survives_a_new_instance_and_sessions_are_separate(store: Store) -> None:
    store().add_turn("ada", _turn("My name is Ada.", "Hello Ada."))
    store().add_turn("bob", _turn("My name is Bob.", "Hello Bob."))
    recall = store().recall("ada")
    assert [m["content"] for m in recall.history] == ["My name is Ada.", "Hello Ada."]
    assert "Bob" not in str(recall)
    assert recall.notes == ["What you know about the user: The user's name is Ada."]


def test_facts_are_per_session_and_can_be_corrected_and_deleted(store: Store) -> None:
    memory = store()
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


def test_new_conversation_and_reopening_an_older_one(store: Store) -> None:
    memory = store()
    memory.add_turn("s", _turn("first thread"))
    first = memory.current("s")
    memory.new_conversation("s")
    memory.add_turn("s", _turn("second thread"))
    assert memory.exchanges("s") == [("second thread", "Okay.")]
    assert [c.title for c in memory.conversations("s")] == ["second thread", "first thread"]
    memory.open_conversation("s", first)
    assert memory.exchanges("s") == [("first thread", "Okay.")]
    assert store().current("s") == first  # kept across restarts


def test_recall_keeps_the_most_recent_turns_that_fit(store: Store) -> None:
    memory = store(history_tokens=30)
    for i in range(10):
        memory.add_turn("s", _turn(f"question {i}", f"answer {i}"))
    said = [m["content"] for m in memory.recall("s").history][::2]
    assert said and said == [f"question {i}" for i in range(10 - len(said), 10)]
    assert len(said) < 10


def test_compact_folds_older_turns_into_the_summary(store: Store) -> None:
    memory = store(history_tokens=40, keep_turns=2)
    seen: list[tuple[str, str]] = []

    def summarize(previous: str, transcript: str) -> str:  # a stand-in for the model
        seen.append((previous, transcript))
        return f"{previous} {transcript}".strip()

    for i in range(6):
        memory.add_turn("s", _turn(f"question number {i}", f"answer number {i}"))
    assert memory.compact("s", summarize)
    assert "question number 0" in seen[0][1] and "question number 3" in seen[0][1]
    assert "question number 4" not in seen[0][1]  # the last two turns stay word for word
    recall = memory.recall("s")
    assert recall.notes == [f"Summary of the conversation so far: {seen[0][1]}"]
    assert [m["content"] for m in recall.history][::2] == ["question number 4", "question number 5"]
    assert not memory.compact("s", summarize)  # within budget now
    for i in range(6, 9):
        memory.add_turn("s", _turn(f"question number {i}", f"answer number {i}"))
    assert memory.compact("s", summarize)
    assert seen[1][0] == seen[0][1]  # the earlier summary is folded into the new one


def test_a_summary_keeps_what_the_person_told_whatever_the_model_writes(store: Store) -> None:
    """A small model refuses or drops the fact; the person's statements stay, word for word."""
    memory = store(history_tokens=40, keep_turns=2)
    memory.add_turn("s", _turn("Please remember this: the secret word is banana.", "Okay."))
    memory.add_turn("s", _turn("My sister Ana lives in Lisbon.", "How nice."))
    for i in range(4):
        memory.add_turn("s", _turn(f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}."))
    assert memory.compact("s", lambda previous, transcript: "I'm sorry, but I can't assist.")
    summary = memory.recall("s").notes[0]
    assert "sorry" not in summary  # the conversation does not say it
    assert "the secret word is banana." in summary and "Ana lives in Lisbon." in summary
    assert "What is 0 plus 0?" not in summary  # a question is no fact
    for i in range(4, 7):
        memory.add_turn("s", _turn(f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}."))
    assert memory.compact("s", lambda previous, transcript: "The user asked what 4 plus 4 is.")
    summary = memory.recall("s").notes[0]  # the model dropped the earlier summary's facts
    assert "The user asked what 4 plus 4 is." in summary
    assert "banana" in summary and "Lisbon" in summary


def test_what_a_summary_adds_back_stays_within_its_budget(store: Store) -> None:
    memory = store(history_tokens=40, keep_turns=2, summary_kept_tokens=60)
    things = ["keys", "stamps", "candles", "batteries", "maps", "gloves", "tickets", "coins"]
    for number, thing in enumerate(things):
        memory.add_turn("s", _turn(f"The {thing} are in box number {number}.", "Okay."))
        memory.compact("s", lambda previous, transcript: "I'm sorry, but I can't assist.")
    (note,) = [n for n in memory.recall("s").notes if n.startswith(CONVERSATION_SUMMARY_NOTE)]
    summary = note.removeprefix(CONVERSATION_SUMMARY_NOTE)
    assert estimate_tokens(summary) <= 60, summary
    assert "keys" not in summary and "gloves" in summary  # the oldest went first


def test_timers_recordings_and_revised_replies(store: Store) -> None:
    memory, now = store(), time.time()
    pasta = memory.add_timer("s", "timer", "pasta", 60, now - 61)
    oven = memory.add_timer("s", "timer", "oven", 600, now)
    call = memory.add_timer("s", "reminder", "call mum", 30, now)
    assert len({pasta.id, oven.id, call.id}) == 3
    assert [t.label for t in memory.running_timers("s")] == ["pasta", "call mum", "oven"]
    assert memory.due_timers(now, "s") == [pasta] and memory.due_timers(now, "other") == []
    assert memory.ring(pasta.id) and not store().ring(pasta.id)  # announced once, by one replica
    memory.cancel_timers("s", [oven.id])
    assert memory.running_timers("s") == [call]
    assert memory.running_timers("s")[0].ends == now + 30  # seconds since 1970, to the digit
    first = memory.add_turn("s", _turn("Summarize this recording."), recording='{"a": 1}')
    memory.add_turn("s", _turn("And the second part?"))
    assert store().latest_recording("s") == '{"a": 1}'
    memory.revise_reply(first, "Cut off.")
    assert memory.exchanges("s")[0] == ("Summarize this recording.", "Cut off.")


def test_two_replicas_compacting_one_conversation_at_once(store: Store) -> None:
    """Both read the same turns and summarize them at the same moment: one summary is kept,
    and the next compaction continues right after the turns it covers."""
    first, second = (store(history_tokens=40, keep_turns=2) for _ in range(2))
    for i in range(6):
        first.add_turn("s", _turn(f"question number {i}", f"answer number {i}"))
    both_read = threading.Barrier(2, timeout=RESTART_DEADLINE_SECONDS)
    transcripts: list[str] = []

    def summarize(previous: str, transcript: str) -> str:  # a stand-in for the model
        transcripts.append(transcript)
        both_read.wait()  # neither stores a summary before the other has read the turns
        return f"{previous}\n{transcript}".strip()

    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda m=m: results.append(m.compact("s", summarize)))
        for m in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]  # one summary stored, the other dropped
    assert transcripts[0] == transcripts[1] and "question number 3" in transcripts[0]
    recall = second.recall("s")
    assert recall.notes == [f"Summary of the conversation so far: {transcripts[0]}"]
    assert [m["content"] for m in recall.history][::2] == ["question number 4", "question number 5"]
    for i in range(6, 9):
        second.add_turn("s", _turn(f"question number {i}", f"answer number {i}"))
    transcripts.clear()
    assert first.compact("s", lambda previous, transcript: f"{previous}\n{transcript}")
    summary = first.recall("s").notes[0]
    for i in range(7):  # every summarized turn once, in order
        assert summary.count(f"question number {i}\n") == 1
    assert summary.index("question number 3") < summary.index("question number 4")


def test_replicas_writing_and_compacting_at_once_lose_and_repeat_nothing(store: Store) -> None:
    """Two replicas take turns of one new session at the same time, each compacting after
    every turn as the pipeline does: every turn ends up once, in the summary or the history."""
    replicas = [store(history_tokens=30, keep_turns=2) for _ in range(2)]
    per_replica = 12

    def summarize(previous: str, transcript: str) -> str:  # keeps every word: checkable
        return f"{previous}\n{transcript}".strip()

    def take_turns(replica: int) -> None:
        for i in range(per_replica):
            replicas[replica].add_turn("s", _turn(f"r{replica}-q{i:02d}", "Okay, noted."))
            replicas[replica].compact("s", summarize)

    threads = [threading.Thread(target=take_turns, args=(r,)) for r in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    said = sorted(f"r{r}-q{i:02d}" for r in range(2) for i in range(per_replica))
    assert sorted(user for user, _reply in replicas[0].exchanges("s")) == said  # one thread
    recall = replicas[1].recall("s")
    remembered = re.findall(r"r\d-q\d\d", " ".join([*recall.notes, *map(str, recall.history)]))
    assert sorted(remembered) == said
    for r in range(2):  # and each replica's turns in the order it took them
        mine = [word for word in remembered if word.startswith(f"r{r}")]
        assert mine == sorted(mine)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition` (a guard against hanging, not a timing requirement)."""
    deadline = time.monotonic() + RESTART_DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.05)


def test_postgresql_restarting_under_load_loses_nothing_and_service_resumes(
    postgres: Any, tmp_path: Path
) -> None:
    """The database server crashes and restarts while a replica writes turn after turn: the
    writes meanwhile fail with a clear error, every write that succeeded is still there, and
    writing resumes by itself."""
    memory = Memory(tmp_path / "unused.db", MemorySettings(url=postgres.create_database()))
    stored: list[str] = []
    failed: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def write() -> None:
        for i in range(1_000_000):
            if stop.is_set():
                return
            try:
                memory.add_turn("s", _turn(f"turn {i}"))
                stored.append(f"turn {i}")
            except VoxloopError as err:
                failed.append(f"turn {i}")
                errors.append(str(err))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        _wait_until(lambda: len(stored) >= 20, "writes before the crash")
        postgres.stop("immediate")  # like a power cut: no clean shutdown, crash recovery next
        _wait_until(lambda: bool(failed), "a write failing while the server is down")
        postgres.start()
        before = len(stored)
        _wait_until(lambda: len(stored) >= before + 20, "writes resuming after the restart")
    finally:
        stop.set()
        writer.join()
        postgres.ensure_started()  # for the next tests, even if this one failed
    assert all("Cannot reach the conversation database" in error for error in errors), errors
    assert f"PostgreSQL at 127.0.0.1:{postgres.port}/" in errors[0]
    assert "not-a-secret" not in errors[0]  # the URL's password is not shown
    present = [user for user, _reply in memory.exchanges("s")]
    assert set(stored) <= set(present)  # nothing stored is lost
    assert set(present) <= set(stored) | set(failed)  # nor anything made up
    assert present == sorted(present, key=lambda text: int(text.split()[1]))


def test_a_turn_in_flight_when_postgresql_restarts(  # type: ignore[no-untyped-def]
    postgres: Any, settings, clearly_spoken, tmp_path: Path
) -> None:
    """The database goes away while a spoken reply is being written: the turn ends with a
    clear error, and once the database is back the next turn works and remembers."""
    from voxloop.pipeline import Pipeline
    from voxloop.turns import Done, ReplyText, TurnRequest

    memory = Memory(tmp_path / "unused.db", MemorySettings(url=postgres.create_database()))
    pipeline = Pipeline(settings, memory, prime_after_turn=False)

    def turn(text: str) -> TurnRequest:
        return TurnRequest(audio=pipeline.load_audio(clearly_spoken(text)), session="s")

    told = list(pipeline.run(turn("My name is Peter.")))[-1]
    assert isinstance(told, Done)
    in_flight = pipeline.run(turn("What is the capital of France?"))
    next(event for event in in_flight if isinstance(event, ReplyText))  # writing the reply
    postgres.stop()
    try:
        with pytest.raises(StoreUnavailable, match="Cannot reach the conversation database"):
            for _event in in_flight:
                pass
    finally:
        postgres.ensure_started()
    asked = list(pipeline.run(turn("What is my name?")))[-1]
    assert isinstance(asked, Done) and "peter" in asked.turn.reply.lower()
    said = [user for user, _reply in memory.exchanges("s")]
    assert len(said) == 2 and "name" in said[1].lower()  # the interrupted turn is not stored


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
