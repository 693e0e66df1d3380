"""The echo filter: voxloop's own voice, heard back through the person's microphone."""

from __future__ import annotations

import difflib

from voxloop.text import words

# A word of our reply misheard on its way back ("capitalo" for "capital", "francis" for
# "france") is still ours: this near by spelling (difflib's ratio; 0.77 for those).
NEAR_SPELLING = 0.75


def is_echo(text: str, last_reply: str, overlap: float) -> bool:
    """Whether `text` is mostly the words of `last_reply` (our voice, back through the mic)."""
    said, heard = set(words(last_reply)), words(text)
    if len(heard) < 2 or not said:
        return False
    return sum(_ours(word, said) for word in heard) / len(heard) >= overlap


def _ours(word: str, said: set[str]) -> bool:
    if word in said:
        return True
    return any(difflib.SequenceMatcher(None, word, ours).ratio() >= NEAR_SPELLING for ours in said)
