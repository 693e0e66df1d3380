"""SQLite storage of conversations and their turns (one file in the data directory)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from voxloop.llm import Message
from voxloop.pipeline import Turn

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    created REAL NOT NULL
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
    timings_ms TEXT NOT NULL
);
"""
HISTORY_TURNS = 6  # recent turns given back to the model as context


class Memory:
    """Conversations keyed by a session name; every write is one transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            with db:  # commits, or rolls back on error
                yield db
        finally:
            db.close()

    def conversation(self, session: str) -> int:
        """The id of `session`'s current (latest) conversation, created if there is none."""
        with self._connect() as db:
            row = db.execute(
                "SELECT id FROM conversations WHERE session = ? ORDER BY id DESC LIMIT 1",
                (session,),
            ).fetchone()
            if row:
                return int(row[0])
            cursor = db.execute(
                "INSERT INTO conversations (session, created) VALUES (?, ?)",
                (session, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def add_turn(self, session: str, turn: Turn) -> None:
        """Store a finished turn in the session's current conversation."""
        conversation_id = self.conversation(session)
        with self._connect() as db:
            db.execute(
                "INSERT INTO turns (conversation_id, created, user_text, reply, voice, language,"
                " timings_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    time.time(),
                    turn.user_text,
                    turn.reply,
                    turn.voice,
                    turn.language,
                    json.dumps(turn.timings_ms),
                ),
            )

    def history(self, session: str, turns: int = HISTORY_TURNS) -> list[Message]:
        """The last `turns` exchanges of the session's current conversation, oldest first."""
        conversation_id = self.conversation(session)
        with self._connect() as db:
            rows = db.execute(
                "SELECT user_text, reply FROM turns WHERE conversation_id = ?"
                " ORDER BY id DESC LIMIT ?",
                (conversation_id, turns),
            ).fetchall()
        messages: list[Message] = []
        for user_text, reply in reversed(rows):
            messages.append(Message(role="user", content=user_text))
            messages.append(Message(role="assistant", content=reply))
        return messages
