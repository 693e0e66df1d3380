"""What voxloop remembers: conversations, their turns, summaries and facts.

A *session* is one person (a browser, or `voxloop ask --session NAME`). Each session has
conversations (threads), one of them current, and a list of facts about the person. Every
write is one transaction. The store is one SQLite file in WAL mode (killing the process
mid-write loses at most that write and never corrupts the file), or, with `memory.url`, a
PostgreSQL server that several replicas share. The SQL is written once, in SQLite's words;
`Database` subclasses translate the few words where PostgreSQL differs.
"""

from __future__ import annotations

import atexit
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from voxloop import facts as fact_patterns
from voxloop import grounding
from voxloop.config import MemorySettings
from voxloop.errors import StoreUnavailable, VoxloopError
from voxloop.llm import Message
from voxloop.prompts import CONVERSATION_SUMMARY_NOTE, FACTS_NOTE, estimate_tokens
from voxloop.turns import Turn

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    name TEXT PRIMARY KEY,
    conversation_id INTEGER
);
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    created REAL NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    summarized_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS conversations_session ON conversations(session);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    created REAL NOT NULL,
    user_text TEXT NOT NULL,
    reply TEXT NOT NULL,
    voice TEXT NOT NULL,
    language TEXT NOT NULL,
    timings_ms TEXT NOT NULL,
    recording TEXT  -- a long recording's transcript and summary (JSON), kept for follow-ups
);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns(conversation_id);
CREATE TABLE IF NOT EXISTS facts (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    key TEXT NOT NULL,
    text TEXT NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (session, key)
);
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    kind TEXT NOT NULL,  -- 'timer' or 'reminder'
    label TEXT NOT NULL,  -- a timer's name ('pasta') or what to be reminded of
    seconds REAL NOT NULL,
    ends REAL NOT NULL,  -- time.time() when it goes off
    state TEXT NOT NULL DEFAULT 'running'  -- 'running', 'rung' or 'cancelled'
);
CREATE INDEX IF NOT EXISTS timers_due ON timers(state, ends);
"""
# Columns added after the first release, for files written by it.
MIGRATIONS = {
    "conversations": {
        "summary": "TEXT NOT NULL DEFAULT ''",
        "summarized_until": "INTEGER NOT NULL DEFAULT 0",
    },
    "turns": {"recording": "TEXT"},
}
TITLE_CHARS = 60
SQLITE_BUSY_SECONDS = 10  # how long a write waits for another process's write to finish
# A turn waits at most this long for PostgreSQL (a free connection, or a new one) and then
# ends with an error: a voice reply cannot wait longer.
POSTGRES_WAIT_SECONDS = 5.0
POSTGRES_CONNECTIONS = 8  # per replica and server: each call holds one only for its transaction
SCHEMA_LOCK = 7_860_001  # PostgreSQL advisory lock: replicas starting together create tables once


@dataclass(frozen=True)
class StoredFact:
    """A fact about the person, as the Memory panel lists it."""

    id: int
    text: str


@dataclass(frozen=True)
class ConversationInfo:
    """One thread of a session, for the list of past conversations."""

    id: int
    created: float
    title: str
    turns: int


@dataclass(frozen=True)
class Timer:
    """A timer or reminder a person set; it survives reloads and restarts."""

    id: int
    session: str
    kind: str  # 'timer' or 'reminder'
    label: str
    seconds: float
    ends: float  # time.time() when it goes off

    def left(self, now: float) -> float:
        """Seconds until it goes off (0 once due)."""
        return max(0.0, self.ends - now)


@dataclass
class Recall:
    """What the model is given from memory for the next turn."""

    history: list[Message] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    recording: str | None = None  # the conversation's last long recording (JSON), if any


class Rows(Protocol):
    """What a statement returns, in either store."""

    @property
    def rowcount(self) -> int:
        """Rows an UPDATE or DELETE changed."""

    def fetchone(self) -> Any:
        """The next row (a tuple), or None."""

    def fetchall(self) -> list[Any]:
        """The remaining rows (tuples)."""


class Database:
    """One transaction on a store. SQL is written in SQLite's words (`?` placeholders, INSERT
    ... RETURNING, ON CONFLICT upserts, which both stores share); `WORDS` maps the rest."""

    WORDS: ClassVar[dict[str, str]] = {}

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def sql(self, text: str) -> str:
        """`text` in this store's dialect."""
        for word, dialect in self.WORDS.items():
            text = text.replace(word, dialect)
        return text

    def execute(self, sql: str, args: tuple[object, ...] = ()) -> Rows:
        """Run one statement."""
        rows: Rows = self.connection.execute(self.sql(sql), args)
        return rows

    def executemany(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        """Run one statement for each row of arguments."""
        self.connection.cursor().executemany(self.sql(sql), rows)

    def create_schema(self) -> None:
        """Create the tables that do not exist yet."""
        raise NotImplementedError

    def columns(self, table: str) -> set[str]:
        """The names of a table's columns."""
        raise NotImplementedError


class SQLiteDatabase(Database):
    """The embedded store: one file, a connection per call."""

    WORDS: ClassVar[dict[str, str]] = {" FOR UPDATE": ""}  # SQLite writes one at a time anyway

    def create_schema(self) -> None:
        """Create the tables that do not exist yet."""
        self.connection.executescript(self.sql(SCHEMA))

    def columns(self, table: str) -> set[str]:
        """The names of a table's columns."""
        return {row[1] for row in self.execute(f"PRAGMA table_info({table})").fetchall()}


class PostgresDatabase(Database):
    """A PostgreSQL server that replicas share, through a pool of connections."""

    WORDS: ClassVar[dict[str, str]] = {
        "?": "%s",
        "INTEGER PRIMARY KEY": "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        " REAL": " DOUBLE PRECISION",  # PostgreSQL's REAL is 4 bytes: seconds since 1970 blur
    }

    def create_schema(self) -> None:
        """Create the tables that do not exist yet (one replica at a time)."""
        self.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
        self.connection.execute(self.sql(SCHEMA))  # no arguments: several statements at once

    def columns(self, table: str) -> set[str]:
        """The names of a table's columns."""
        rows = self.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        ).fetchall()
        return {row[0] for row in rows}


@contextmanager
def _sqlite_transaction(path: Path) -> Iterator[Database]:
    """One transaction on the SQLite file: committed, or rolled back on error."""
    try:
        db = sqlite3.connect(path, timeout=SQLITE_BUSY_SECONDS)
    except sqlite3.Error as err:
        raise VoxloopError(f"Cannot open the memory file {path}: {err}") from err
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        with db:  # commits, or rolls back on error
            yield SQLiteDatabase(db)
    finally:
        db.close()


_pools: dict[str, ConnectionPool] = {}
_pools_lock = threading.Lock()


def _pool(url: str) -> ConnectionPool:
    """The process's pool of connections to `url` (shared by every Memory using it)."""
    from psycopg_pool import ConnectionPool

    with _pools_lock:
        if url not in _pools:
            pool = ConnectionPool(
                url, min_size=1, max_size=POSTGRES_CONNECTIONS, open=True,
                timeout=POSTGRES_WAIT_SECONDS, kwargs={"connect_timeout": POSTGRES_WAIT_SECONDS},
                check=ConnectionPool.check_connection,  # a server restart broke idle ones
                name="voxloop-memory",
            )  # fmt: skip
            atexit.register(pool.close)
            _pools[url] = pool
        return _pools[url]


@contextmanager
def _postgres_transaction(url: str) -> Iterator[Database]:
    """One transaction on the PostgreSQL server: committed, or rolled back on error; a server
    that cannot be reached (down, restarting) is a VoxloopError, and the next call retries."""
    import psycopg

    try:
        with _pool(url).connection() as connection:
            yield PostgresDatabase(connection)
    except (psycopg.OperationalError, psycopg.InterfaceError) as err:  # PoolTimeout is one too
        raise _unreachable(url, err) from err


def _unreachable(url: str, err: Exception) -> StoreUnavailable:
    """The error a person reads when the PostgreSQL server cannot be reached."""
    from psycopg_pool import PoolTimeout

    if isinstance(err, PoolTimeout):  # its own message does not say why
        reason = f"no connection within {POSTGRES_WAIT_SECONDS:g} s (is the server running?)"
    else:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return StoreUnavailable(
        f"Cannot reach the conversation database ({postgres_where(url)}): {reason}. "
        "Please try again in a moment."
    )


def postgres_where(url: str) -> str:
    """`url` without its password, for messages: 'PostgreSQL at host:port/database'."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(url)
    host, port, name = parts.get("host", "localhost"), parts.get("port", ""), parts.get("dbname")
    return f"PostgreSQL at {host}{':' if port else ''}{port}/{name or ''}"


class Memory:
    """The store of every session; safe to share between threads, and between processes and
    replicas (each call is one transaction)."""

    def __init__(self, path: Path, settings: MemorySettings | None = None) -> None:
        """`path`: the SQLite file, used unless `settings.url` names a PostgreSQL server."""
        self.path = path
        self.settings = settings or MemorySettings()
        url = self.settings.url
        if not url:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._connect: Callable[[], AbstractContextManager[Database]] = (
            (lambda: _postgres_transaction(url)) if url else (lambda: _sqlite_transaction(path))
        )
        with self._connect() as db:
            db.create_schema()
            _migrate(db)

    # Conversations

    def current(self, session: str) -> int:
        """The id of the session's current conversation, started if there is none."""
        with self._connect() as db:
            return _current(db, session)

    def new_conversation(self, session: str) -> int:
        """Start a fresh thread and make it current (older ones stay and can be reopened)."""
        with self._connect() as db:
            return _start_conversation(db, session)

    def open_conversation(self, session: str, conversation_id: int) -> None:
        """Make one of the session's past conversations current again."""
        with self._connect() as db:
            owner = db.execute(
                "SELECT session FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if owner is None or owner[0] != session:
                raise VoxloopError("That conversation does not exist (any more).")
            _set_current(db, session, conversation_id)

    def conversations(self, session: str) -> list[ConversationInfo]:
        """The session's conversations with at least one turn, newest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT c.id, c.created, COUNT(t.id),"
                " (SELECT user_text FROM turns WHERE conversation_id = c.id ORDER BY id LIMIT 1)"
                " FROM conversations c JOIN turns t ON t.conversation_id = c.id"
                " WHERE c.session = ? GROUP BY c.id ORDER BY c.id DESC",
                (session,),
            ).fetchall()
        return [
            ConversationInfo(id, created, _title(first_words), count)
            for id, created, count, first_words in rows
        ]

    # Turns

    def add_turn(self, session: str, turn: Turn, recording: str | None = None) -> int:
        """Store a finished turn (with the recording it summarized, as JSON), and the facts the
        person stated in it; returns the turn id."""
        with self._connect() as db:
            conversation_id = _current(db, session)
            # Two replicas adding turns to one conversation take turns, so ids follow commit
            # order: compaction summarizes "every turn up to id N" and must not skip one.
            db.execute("SELECT id FROM conversations WHERE id = ? FOR UPDATE", (conversation_id,))
            turn_id = db.execute(
                "INSERT INTO turns (conversation_id, created, user_text, reply, voice, language,"
                " timings_ms, recording) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    conversation_id,
                    time.time(),
                    turn.user_text,
                    turn.reply,
                    turn.voice,
                    turn.language,
                    json.dumps(turn.timings_ms),
                    recording,
                ),
            ).fetchone()[0]
            # "Remind me in ten minutes to ..." is a timer, not a fact about the person.
            stated = fact_patterns.extract(turn.user_text) if turn.skill != "timers" else []
            for fact in stated:
                _upsert_fact(db, session, fact.key, fact.text)
            return int(turn_id)

    def revise_reply(self, turn_id: int, reply: str) -> None:
        """Replace a stored reply (after a barge-in: only what the person heard)."""
        with self._connect() as db:
            db.execute("UPDATE turns SET reply = ? WHERE id = ?", (reply, turn_id))

    def latest_recording(self, session: str) -> str | None:
        """The last long recording (JSON) of the session's current conversation, if any."""
        with self._connect() as db:
            return _latest_recording(db, _current(db, session))

    def exchanges(self, session: str) -> list[tuple[str, str]]:
        """(what the person said, the reply) of every turn of the current conversation."""
        with self._connect() as db:
            conversation_id = _current(db, session)
            rows = db.execute(
                "SELECT user_text, reply FROM turns WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [(user_text, reply) for user_text, reply in rows]

    # Facts

    def facts(self, session: str) -> list[StoredFact]:
        """The facts known about the person, oldest first."""
        with self._connect() as db:
            return _facts(db, session)

    def add_fact(self, session: str, text: str) -> None:
        """Add a fact the person typed in the Memory panel."""
        if text.strip():
            with self._connect() as db:
                _upsert_fact(db, session, f"typed {text.strip().lower()}", text.strip())

    def edit_fact(self, session: str, fact_id: int, text: str) -> None:
        """Correct a fact (an empty text deletes it)."""
        if not text.strip():
            self.delete_fact(session, fact_id)
            return
        with self._connect() as db:
            db.execute(
                "UPDATE facts SET text = ?, updated = ? WHERE id = ? AND session = ?",
                (text.strip(), time.time(), fact_id, session),
            )

    def delete_fact(self, session: str, fact_id: int) -> None:
        """Forget one fact."""
        with self._connect() as db:
            db.execute("DELETE FROM facts WHERE id = ? AND session = ?", (fact_id, session))

    def forget_everything(self, session: str) -> None:
        """Delete every conversation and fact of the session."""
        with self._connect() as db:
            db.execute("DELETE FROM facts WHERE session = ?", (session,))
            db.execute("DELETE FROM timers WHERE session = ?", (session,))
            db.execute("DELETE FROM conversations WHERE session = ?", (session,))
            db.execute("DELETE FROM sessions WHERE name = ?", (session,))

    # Timers and reminders

    def add_timer(self, session: str, kind: str, label: str, seconds: float, now: float) -> Timer:
        """Start a timer (or reminder) that goes off `seconds` after `now`."""
        with self._connect() as db:
            timer_id = db.execute(
                "INSERT INTO timers (session, kind, label, seconds, ends) VALUES (?, ?, ?, ?, ?)"
                " RETURNING id",
                (session, kind, label, seconds, now + seconds),
            ).fetchone()[0]
            return Timer(int(timer_id), session, kind, label, seconds, now + seconds)

    def running_timers(self, session: str) -> list[Timer]:
        """The session's timers that have not gone off or been cancelled, soonest first."""
        with self._connect() as db:
            return _timers(db, "session = ? AND state = 'running'", (session,))

    def cancel_timers(self, session: str, ids: list[int]) -> None:
        """Cancel the session's running timers with these ids."""
        with self._connect() as db:
            db.executemany(
                "UPDATE timers SET state = 'cancelled' WHERE id = ? AND session = ?"
                " AND state = 'running'",
                [(timer_id, session) for timer_id in ids],
            )

    def due_timers(self, now: float, session: str | None = None) -> list[Timer]:
        """Timers that have gone off and not been announced yet (of one session, or all)."""
        where, args = "state = 'running' AND ends <= ?", tuple[object, ...]((now,))
        if session is not None:
            where, args = where + " AND session = ?", (now, session)
        with self._connect() as db:
            return _timers(db, where, args)

    def ring(self, timer_id: int) -> bool:
        """Mark a due timer announced; False if someone else announced or cancelled it first."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE timers SET state = 'rung' WHERE id = ? AND state = 'running'", (timer_id,)
            )
            return cursor.rowcount == 1

    # What the model sees

    def recall(self, session: str) -> Recall:
        """Facts and the summary as notes, the recent turns that fit the history budget, and
        the conversation's last long recording."""
        with self._connect() as db:
            conversation_id, summary, _since, rows = _unsummarized(db, session)
            known = [fact.text for fact in _facts(db, session)]
            recall = Recall(recording=_latest_recording(db, conversation_id))
        if known:
            recall.notes.append(FACTS_NOTE + " ".join(known))
        if summary:
            recall.notes.append(CONVERSATION_SUMMARY_NOTE + summary)
        budget = self.settings.history_tokens
        for _id, user_text, reply in reversed(rows):  # newest first, until the budget is spent
            budget -= estimate_tokens(user_text) + estimate_tokens(reply)
            if budget < 0:
                break
            recall.history[:0] = [
                Message(role="user", content=user_text),
                Message(role="assistant", content=reply),
            ]
        return recall

    def compact(self, session: str, summarize: Callable[[str, str], str]) -> bool:
        """Fold older turns into the summary once the turns outgrow the history budget.

        `summarize(previous_summary, transcript)` writes the new summary (a language model
        call). The most recent `keep_turns` turns are kept word for word. Returns whether it
        summarized. Replicas may compact one conversation at once: the summary is stored only
        if no other one was stored since it was read (compare and set; no lock is held during
        the model call), so no turn is summarized twice or skipped.
        """
        with self._connect() as db:
            conversation_id, summary, since, rows = _unsummarized(db, session)
        size = sum(estimate_tokens(user) + estimate_tokens(reply) for _, user, reply in rows)
        older = rows[: -self.settings.keep_turns]
        if size <= self.settings.history_tokens or not older:
            return False
        transcript = "\n".join(f"User: {user}\nAssistant: {reply}" for _, user, reply in older)
        written = summarize(summary, transcript).strip()
        said = [(user, reply) for _, user, reply in older]
        new_summary = grounding.faithful_summary(
            written, summary, said, self.settings.summary_kept_tokens
        )
        with self._connect() as db:
            stored = db.execute(
                "UPDATE conversations SET summary = ?, summarized_until = ?"
                " WHERE id = ? AND summarized_until = ?",
                (new_summary, older[-1][0], conversation_id, since),
            ).rowcount
        return stored == 1


def _migrate(db: Database) -> None:
    for table, columns in MIGRATIONS.items():
        present = db.columns(table)
        for column, definition in columns.items():
            if column not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


def _unsummarized(db: Database, session: str) -> tuple[int, str, int, list[tuple[int, str, str]]]:
    """The current conversation: its id, its summary, the last turn id it covers, and the
    (id, user_text, reply) turns after that, oldest first."""
    conversation_id = _current(db, session)
    summary, since = db.execute(
        "SELECT summary, summarized_until FROM conversations WHERE id = ?", (conversation_id,)
    ).fetchone()
    rows = db.execute(
        "SELECT id, user_text, reply FROM turns WHERE conversation_id = ? AND id > ? ORDER BY id",
        (conversation_id, since),
    ).fetchall()
    return conversation_id, summary, since, rows


def _facts(db: Database, session: str) -> list[StoredFact]:
    rows = db.execute(
        "SELECT id, text FROM facts WHERE session = ? ORDER BY id", (session,)
    ).fetchall()
    return [StoredFact(id, text) for id, text in rows]


def _timers(db: Database, where: str, args: tuple[object, ...]) -> list[Timer]:
    rows = db.execute(
        f"SELECT id, session, kind, label, seconds, ends FROM timers WHERE {where} ORDER BY ends",
        args,
    ).fetchall()
    return [Timer(*row) for row in rows]


def _latest_recording(db: Database, conversation_id: int) -> str | None:
    row = db.execute(
        "SELECT recording FROM turns WHERE conversation_id = ? AND recording IS NOT NULL"
        " ORDER BY id DESC LIMIT 1",
        (conversation_id,),
    ).fetchone()
    return str(row[0]) if row else None


def _current(db: Database, session: str) -> int:
    row = db.execute("SELECT conversation_id FROM sessions WHERE name = ?", (session,)).fetchone()
    if row and row[0] is not None:
        return int(row[0])
    # A session seen for the first time: claim its row, so that two replicas starting it at
    # once start one conversation (the second waits here, then finds the first one's).
    db.execute("INSERT INTO sessions (name) VALUES (?) ON CONFLICT(name) DO NOTHING", (session,))
    row = db.execute(
        "SELECT conversation_id FROM sessions WHERE name = ? FOR UPDATE", (session,)
    ).fetchone()
    if row[0] is not None:
        return int(row[0])
    latest = db.execute(  # a file from before sessions were tracked: continue its last thread
        "SELECT id FROM conversations WHERE session = ? ORDER BY id DESC LIMIT 1", (session,)
    ).fetchone()
    if latest:
        _set_current(db, session, int(latest[0]))
        return int(latest[0])
    return _start_conversation(db, session)


def _start_conversation(db: Database, session: str) -> int:
    conversation_id = int(
        db.execute(
            "INSERT INTO conversations (session, created) VALUES (?, ?) RETURNING id",
            (session, time.time()),
        ).fetchone()[0]
    )
    _set_current(db, session, conversation_id)
    return conversation_id


def _set_current(db: Database, session: str, conversation_id: int) -> None:
    db.execute(
        "INSERT INTO sessions (name, conversation_id) VALUES (?, ?)"
        " ON CONFLICT(name) DO UPDATE SET conversation_id = excluded.conversation_id",
        (session, conversation_id),
    )


def _upsert_fact(db: Database, session: str, key: str, text: str) -> None:
    db.execute(
        "INSERT INTO facts (session, key, text, updated) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(session, key) DO UPDATE SET text = excluded.text,"
        " updated = excluded.updated",
        (session, key, text, time.time()),
    )


def _title(text: str) -> str:
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"
