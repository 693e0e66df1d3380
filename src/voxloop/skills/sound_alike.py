"""Skill words heard as other words: "tigers" for "timers", "late" for "date".

A recognizer often turns one word of a request into another that sounds like it, and the
skill's pattern then misses the request ("Cancel all tigers", "What is today's late?"). When no
skill took a transcript as heard, each word (or pair of words: "sent imeters") that is not a
skill word but sounds within one or two edits of one (`sounds.edit_distance`, on espeak-ng's
phonemes) is read as that skill word, and the skills are asked again. The skills' patterns
stay as strict as before (nothing but asking words around the request), which keeps a
respelled ordinary question from being taken for one.
"""

from __future__ import annotations

import functools

from voxloop.sounds import edit_distance, sounds
from voxloop.text import stem

# The words skills key on that a recognizer mishears (their other forms come with them).
SKILL_WORDS = (
    "timer", "timers", "remind", "reminder", "cancel", "date", "day", "year", "month", "time",
    "minutes", "hours", "seconds", "percent", "centimetres", "metres", "kilometres", "litres",
    "millilitres", "grams", "ounces", "inches", "feet", "miles", "pints", "gallon", "cubed",
    "squared", "subtract", "divided", "plus", "times", "multiply",
)  # fmt: skip
# How near a heard word must sound: at most this share of the skill word's sounds (weighted
# edits), and never more than MAX_EDITS.
TOLERANCE = 0.25
MAX_EDITS = 2
SPAN_WORDS = 2  # a skill word may be heard as two words ("sent imeters")
MIN_SOUNDS = 3  # shorter words ("a", "to") sound like too much
SKILL_STEMS = frozenset(stem(word) for word in SKILL_WORDS)  # "days", "minute" are heard right


@functools.lru_cache(maxsize=64)  # a prepared turn asks once ahead, then again to answer
def respelled(words: str, keep: frozenset[str]) -> str | None:
    """`words` with words that sound like skill words replaced by them (None: none did);
    words in `keep` (and skill words) are never replaced."""
    heard = words.split()
    candidates = [
        (start, size, " ".join(heard[start : start + size]))
        for size in range(1, SPAN_WORDS + 1)
        for start in range(len(heard) - size + 1)
        if not any(_kept(word, keep) for word in heard[start : start + size])
    ]
    if not candidates:
        return None
    replaced: dict[int, tuple[int, str]] = {}  # start -> (size, skill word)
    for start, size, text in candidates:
        overlaps = any(start < s + n and s < start + size for s, (n, _w) in replaced.items())
        if overlaps or len(candidate := sounds(text)) < MIN_SOUNDS:
            continue
        if best := _nearest(candidate, _skill_sounds()):
            replaced[start] = (size, best)
    if not replaced:
        return None
    out, position = [], 0
    while position < len(heard):
        if position in replaced:
            size, word = replaced[position]
            out.append(word)
            position += size
        else:
            out.append(heard[position])
            position += 1
    return " ".join(out)


def _kept(word: str, keep: frozenset[str]) -> bool:
    """Whether `word` stays as heard: an asking word, a number, or a form of a skill word."""
    return word in keep or word.isdigit() or stem(word) in SKILL_STEMS


@functools.cache
def _skill_sounds() -> dict[str, tuple[str, ...]]:
    """Each skill word's sounds (read once: they never change)."""
    return {word: sounds(word) for word in SKILL_WORDS}


def _nearest(heard: tuple[str, ...], targets: dict[str, tuple[str, ...]]) -> str | None:
    """The skill word that the `heard` sounds are nearest, when near enough."""
    scored = []
    for word, target in targets.items():
        allowed = min(MAX_EDITS, max(1, round(TOLERANCE * len(target))))
        if abs(len(heard) - len(target)) > allowed:  # each sound added or dropped costs >= 1
            continue
        distance = edit_distance(heard, target)
        if 0 < distance <= allowed:
            scored.append((distance, word))
    return min(scored)[1] if scored else None
