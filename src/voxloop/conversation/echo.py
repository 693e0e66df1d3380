"""The echo filter: voxloop's own voice, heard back through the person's microphone."""

from __future__ import annotations

from voxloop.text import words


def is_echo(text: str, last_reply: str, overlap: float) -> bool:
    """Whether `text` is mostly the words of `last_reply` (our voice, back through the mic)."""
    said, heard = set(words(last_reply)), words(text)
    if len(heard) < 2 or not said:
        return False
    return sum(word in said for word in heard) / len(heard) >= overlap
