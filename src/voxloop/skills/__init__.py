"""Skills: what a language model cannot know, answered by voxloop itself, right every time.

A skill reads the person's words (as transcribed) and answers them, or passes (None) so the
model answers. Skills run before the model, in a fixed order, on normalized text: they are
deterministic patterns, chosen over the model's tool calling by measured accuracy
(`voxloop bench skills`, docs/benchmarks.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from voxloop.skills.numbers import numbers_to_digits
from voxloop.text import stem

if TYPE_CHECKING:
    from voxloop.memory import Memory
    from voxloop.stt import Readings


@dataclass(frozen=True)
class SkillContext:
    """What a skill may use: the person's clock, and their stored memory (timers, facts)."""

    now: datetime  # aware, in the person's time zone
    session: str | None = None
    memory: Memory | None = None
    told: str = ""  # what the model is given of the conversation: turns, notes, facts
    persona: bool = False  # a custom system prompt speaks: it may play at knowing


@dataclass(frozen=True)
class SkillAnswer:
    """A skill's spoken answer, and which skill gave it."""

    skill: str
    text: str


Skill = Callable[[str, SkillContext], str | None]  # normalized words -> answer, or None
SKILLS: dict[str, Skill] = {}  # name -> skill
# Timers before units ("a timer for 5 minutes" is not a conversion), units before arithmetic.
# "I don't know" last: every other skill knows better.
ORDER = ("timers", "clock", "recall", "units", "arithmetic", "unknowable")


def skill(name: str) -> Callable[[Skill], Skill]:
    """Decorator: register a skill under `name` (tried in the order of ORDER)."""

    def add(function: Skill) -> Skill:
        SKILLS[name] = function
        return function

    return add


_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "×": " times ", "÷": " divided by "})
# What transcripts split or spell otherwise, put back as the patterns expect them.
# Whisper writes "15%" for "fifteen percent" and "100-37" for "a hundred minus thirty seven".
_SPOKEN_FORMS = [
    (re.compile(r"\bto day\b"), "today"),
    (re.compile(r"\bper cent\b"), "percent"),
    (re.compile(r"(?<=\d)%"), " percent"),
    (re.compile(r"(?<=\d)([-+*/])(?=\d)"), r" \1 "),
]
_CONTRACTIONS = {"what's": "what is", "whats": "what is", "it's": "it is", "how's": "how is",
                 "what're": "what are", "there's": "there is", "i've": "i have",
                 "don't": "do not", "that's": "that is", "where's": "where is",
                 "who's": "who is", "when's": "when is", "who'll": "who will",
                 "what'll": "what will", "i'm": "i am", "i'll": "i will"}  # fmt: skip
_NOT_WORD = re.compile(r"[^\w\s.+*/%'-]")
_LETTER_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z])")


def normalize(text: str) -> str:
    """Lower-case words with numbers as digits, punctuation gone but for arithmetic signs."""
    # Not text.words: the skills' patterns need what a word list drops (signs, decimal points,
    # "1,000" as one number) and spelled numbers turned into digits.
    text = text.lower().translate(_APOSTROPHES)
    text = _LETTER_HYPHEN.sub(" ", text)
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = _NOT_WORD.sub(" ", text)
    text = re.sub(r"\.(?!\d)", " ", text)  # a full stop, not a decimal point
    text = " ".join(_CONTRACTIONS.get(word, word) for word in text.split())
    for pattern, replacement in _SPOKEN_FORMS:
        text = pattern.sub(replacement, text)
    return numbers_to_digits(text.strip(" '-"))


# Words that carry no request of their own: politeness, the wake phrase, asking frames.
FILLER = frozenset(
    {
        "hey", "hi", "ok", "okay", "computer", "please", "so", "well", "excuse", "me", "um", "uh",
        "just", "now", "right", "currently", "quickly", "exactly", "at", "the", "moment", "what",
        "what's", "which", "tell", "can", "could", "would", "you", "do", "does", "did", "know", "i",
        "wonder", "any", "idea", "is", "it", "are", "we", "have", "has", "got", "us", "give", "say",
        "let", "see", "a", "an", "by", "this", "point", "sorry", "oh", "and", "then", "hello",
        "again", "quick", "question", "assistant",
    }
)  # fmt: skip


def only_words(words: str, needed: set[str], allowed: set[str]) -> bool:
    """Whether `words` has one of `needed` and nothing but `needed`, `allowed` and FILLER: a
    request said any way, with no other content that would make it another question."""
    said = set(words.split())
    return bool(said & needed) and said <= needed | allowed | FILLER


def now(timezone: str | None) -> datetime:
    """The time now, aware, in `timezone` (an IANA name) or the machine's own zone."""
    return datetime.now(ZoneInfo(timezone)) if timezone else datetime.now().astimezone()


def answer(text: str, context: SkillContext) -> SkillAnswer | None:
    """The first skill's answer to `text`, or None when the model should answer."""
    words = normalize(text)
    if not words:
        return None
    if found := _first_answer(words, context, ORDER):
        return found
    # "Sorry, I've lost track, what day is it?": the question after a lead-in. Not for "I
    # don't know": the lead-in may be what makes it about the person.
    if (question := _after_lead_in(words)) and (
        found := _first_answer(question, context, ORDER[:-1])
    ):
        return found
    # Misheard skill words ("cancel all tigers"): read them as the words they sound like. Not
    # for "I don't know": a respelled question is no more about the person than before.
    if respelled := sound_alike.respelled(words, FILLER):
        return _first_answer(respelled, context, ORDER[:-1])
    return None


# Words of skill requests that no skill word covers (recall, conversions, time left): with a
# skill word, a number or a word that sounds like one, they make a transcript near a request.
NEAR_WORDS = frozenset(
    stem(word)
    for word in ("remember", "know", "about", "me", "convert", "much", "many", "long", "left")
)


# More words than this besides asking words, numbers and skill words, and a transcript is a
# question of its own, not a misheard request: on the tuning phrasings, fewer would lose
# requests, more only costs ordinary questions a decode (docs/benchmarks.md, skills).
MAX_OTHER_WORDS = 5


# The skills' words, as the recognizer's prompt for the other readings: it then expects them
# ("mattress" is read as "metres", "what man visit" as "what month is it"). Spoken requests of
# `voxloop bench skills` handled right, with readings decoded without and with it: tuning
# 88.9% -> 92.4%, revision 89.6% -> 91.8% (docs/benchmarks.md, skills).
EXPECTED_WORDS = (
    "Set a timer for an hour or ten minutes. Remind me. What time is it? The date, day, month, "
    "year? Convert metres, kilometres, centimetres, millimetres, litres, millilitres, grams, "
    "kilograms, ounces, pounds, feet, inches, miles, cups, pints, gallons, Celsius, Fahrenheit. "
    "What is three times four, plus, minus, divided by, squared, cubed, percent? What do you "
    "remember about me?"
)


def chosen_reading(text: str, readings: Readings, now: datetime) -> str:
    """`text`, or the first of the recognizer's other `readings` of the same audio that a skill
    (but "I don't know") takes, when none takes `text` but it comes near a request: "Convert
    500 gram st." -> "convert 500 grams to ounces". Readings are asked for only then (they
    cost a decode); nothing is done or stored."""
    context = SkillContext(now)
    if answer(text, context) is not None or not _near_a_request(normalize(text)):
        return text
    for reading in readings(EXPECTED_WORDS):
        if (found := answer(reading, context)) is not None and found.skill != "unknowable":
            return reading
    return text


def _near_a_request(words: str) -> bool:
    """Whether `words` may be a misheard request: a skill word (any form), a number, an asking
    word of a skill, or a word that sounds like a skill word, among few other words."""
    hints = sound_alike.SKILL_STEMS | NEAR_WORDS
    hinted = [w for w in words.split() if w.isdigit() or stem(w) in hints]
    other = [w for w in words.split() if w not in FILLER and w not in hinted]
    if len(other) > MAX_OTHER_WORDS:
        return False
    return bool(hinted) or sound_alike.respelled(words, FILLER) is not None


ASKING_WORDS = ("what", "which")  # where a question begins after a lead-in


def _after_lead_in(words: str) -> str | None:
    """The question at the end of `words` ("... lost track what day is it" -> "what day is
    it", "i need to know the current time" -> "the current time"), from the last asking word
    that does not open them or after "to know"; None if there is none."""
    heard = words.split()
    starts = [i for i, word in enumerate(heard) if word in ASKING_WORDS and i > 0]
    starts += [i + 1 for i in range(1, len(heard) - 1) if heard[i - 1 : i + 1] == ["to", "know"]]
    return " ".join(heard[max(starts) :]) if starts else None


# Skills that carry out requests of a fixed form ("set a timer for five minutes", "what time is
# it"): once one would carry out the words heard so far, the request is whole.
COMMANDS = frozenset({"timers", "clock", "recall", "units", "arithmetic"})
# Skills that change what is stored (a timer set or cancelled), not only answer.
ACTING = frozenset({"timers"})


def whole_request(text: str, now: datetime) -> bool:
    """Whether `text` is a request a command skill would carry out as it stands, not one it
    would ask back about ("set a timer": for how long?). Nothing is done or stored."""
    found = answer(text, SkillContext(now))
    return found is not None and found.skill in COMMANDS and not found.text.endswith("?")


def _first_answer(words: str, context: SkillContext, order: Sequence[str]) -> SkillAnswer | None:
    for name in order:
        if (reply := SKILLS[name](words, context)) is not None:
            return SkillAnswer(name, reply)
    return None


from voxloop.skills import (  # noqa: E402,F401
    arithmetic,
    clock,
    recall,
    sound_alike,
    timers,
    units,
    unknowable,
)
