"""Questions only the person, or the future, can answer: voxloop says it cannot know.

Asked "What colour is my car?", a small model invents one ("Your car is red."): it answered
5% of such questions honestly (`voxloop bench answers`). When a question asks about the
person's own things or doings and nothing the conversation holds (its turns, notes and stored
facts) mentions the thing asked about, or asks what will happen, voxloop says so itself. It
stays quiet for a persona (a custom system prompt may play at knowing) and for advice
("How can I keep my teeth healthy?").
"""

from __future__ import annotations

import re

from voxloop.skills import SkillContext, skill
from voxloop.text import stem

NOT_TOLD = "I don't know that: you haven't told me."
FUTURE = "I can't know that: nobody can tell the future for sure, and I have no live news."

QUESTION_WORDS = {"what", "where", "who", "whom", "whose", "when", "which", "how"}
# "Is my flight going to be late?", "Will my team win?": yes-or-no questions about a fact.
YES_NO = {"is", "are", "was", "will"}
# How people open a question: "Hey, can you tell me where...", "Do you know who...".
OPENINGS = re.compile(
    r"^(?:(?:hey|hi|ok|okay|so|well|um|uh|computer|please) )*"
    r"(?:(?:can|could|would) you (?:please )?tell me |do you know |tell me )?"
)
# "How old is my sister?" asks a fact; "How do I..." and "How can I..." ask for advice.
HOW_FACTS = {"old", "much", "many", "tall", "big", "far", "long", "heavy"}
ADVICE = {
    "should", "can", "could", "would", "might", "must", "shall", "ought", "why", "if", "mean",
    "means", "happen", "happens", "cause", "causes", "normal", "usually",
}  # fmt: skip
# "What did I...", "What am I...", "What will I...": the person's own doings.
MY_DOINGS = re.compile(
    r"\b(?:did|was|were|am|will|have|had) i\b|^(?:what|where|who|when|which) i\b|\bi \w+ed\b"
    r"|\bdo i (?:have(?! to)|own|like|love|live|work|support|prefer|want|use|drive|play|study"
    r"|eat|drink|keep|owe|take)\b"
)
# What the conversation itself holds: "What did I just say?" and "Who am I talking to?" are
# the model's to answer.
CONVERSATION_VERBS = {
    "say", "said", "ask", "asked", "tell", "told", "mention", "mentioned", "talking", "speaking",
    "chatting",
}  # fmt: skip
# "How many bones are in my body?", "How many legs does my cat have?": what every body of a
# kind has, which the model knows.
BODY = {
    "body", "bone", "bones", "teeth", "tooth", "heart", "blood", "brain", "skin", "lung",
    "lungs", "stomach", "mouth", "eye", "eyes", "ear", "ears", "muscle", "muscles", "liver",
    "kidney", "kidneys", "nose", "tongue", "finger", "fingers", "toe", "toes", "hair", "nail",
    "nails", "cell", "cells", "head", "leg", "legs", "arm", "arms", "foot", "feet", "back",
    "hand", "hands", "whiskers", "tail", "paws", "fur", "wings", "feathers", "claws",
}  # fmt: skip
# What voxloop keeps itself: the timers skill answers.
KEPT = {"timer", "timers", "alarm", "alarms", "reminder", "reminders"}
# Words before the thing owned: "my best friend's", "my first pet".
QUALIFIERS = {
    "best", "first", "own", "little", "big", "older", "younger", "old", "new", "favourite",
    "favorite", "current", "last", "next", "dear", "whole", "2",
}  # fmt: skip
STOPWORDS = {
    "a", "an", "the", "of", "in", "on", "for", "to", "at", "about", "with", "from", "my", "i",
    "me", "is", "are", "was", "were", "be", "been", "will", "did", "do", "does", "am", "have",
    "had", "has", "what", "where", "who", "when", "which", "how", "right", "now", "today",
    "tonight", "tomorrow", "yesterday", "this", "that", "morning", "evening", "just", "going",
    "last", "night", "week", "ago",
}  # fmt: skip
# "Who will win the lottery next week?": will + a time to come, or a forecast.
FUTURE_WORDS = re.compile(
    r"\b(?:will|going to|gonna)\b.*\b(?:tomorrow|tonight|next (?:week|month|year|weekend|time)"
    r"|this weekend|in the future|someday|weather|rain|snow|win|winner|lottery|stock)\b"
)
KNOWN_FUTURES = {"sun", "sunrise", "sunset", "moon", "birthday"}  # the calendar knows these


def _stem(word: str) -> str:
    """'neighbour's' and 'neighbors' -> 'neighbor': the same thing, spelled any way."""
    return stem(word.removesuffix("'").replace("our", "or"))


def _is_fact_question(words: list[str]) -> bool:
    """Whether the words ask for a fact (not advice, not a sum): 'what is...', 'how old is...'."""
    if not words or words[0] not in QUESTION_WORDS | YES_NO or set(words) & ADVICE:
        return False
    if any(word[0].isdigit() for word in words):
        return False  # "If I have 12 biscuits...", "...144? I'm doing my homework."
    if words[0] == "how":
        return len(words) > 1 and words[1] in HOW_FACTS and not set(words) & BODY
    return True


def _things_asked_about(words: list[str]) -> list[str] | None:
    """The thing a question about the person's own life asks about, or None if it is not one."""
    text = " ".join(words)
    if "my" in words:
        owned = [w for w in words[words.index("my") + 1 :] if w not in QUALIFIERS]
        if owned and not {_stem(w) for w in owned[:2]} & {_stem(b) for b in BODY}:
            return owned[:1]  # not "my hand", "my cat's whiskers"
    if (doing := MY_DOINGS.search(text)) and not set(words) & CONVERSATION_VERBS:
        after = text[doing.end() :].split()
        return [w for w in after if w not in STOPWORDS and w not in BODY] or after
    return None


def asks_the_unknowable(words: str, told: str) -> str | None:
    """The reply to a question voxloop cannot know the answer to, or None."""
    words = OPENINGS.sub("", words)
    said = words.split()
    if not _is_fact_question(said) or set(said) & KEPT:
        return None
    things = _things_asked_about(said)
    if things is not None and {_stem(t) for t in things} & {_stem(w) for w in told.split()}:
        return None  # told before: the model has it in the conversation
    if FUTURE_WORDS.search(words) and not set(said) & KNOWN_FUTURES:
        return FUTURE
    return NOT_TOLD if things is not None else None


@skill("unknowable")
def unknowable(words: str, context: SkillContext) -> str | None:
    """Say 'I don't know' to what only the person, or the future, could tell."""
    if context.persona:
        return None
    return asks_the_unknowable(words, context.told)
