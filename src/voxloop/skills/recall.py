"""'What do you remember about me?': the person's stored facts, read back."""

from __future__ import annotations

import re

from voxloop.skills import FILLER, SkillContext, only_words, skill

# "What do you know about me?", said any way: a memory word, "me", and nothing else asked.
MEMORY_WORDS = {
    "remember", "know", "recall", "learn", "learned", "learnt", "stored", "store", "saved",
    "save", "kept", "keep", "found", "find", "facts", "fact", "information", "memory", "told",
    "remembered", "file", "info", "details", "detail", "data", "notes", "note", "picked",
    "gathered",
}  # fmt: skip
ABOUT_ME = {"me", "myself"}
ALLOWED = {
    "about", "of", "on", "everything", "anything", "all", "things", "personal", "far", "from",
    "your", "in", "you've", "youve", "out", "remind", "so", "me", "myself", "the", "user", "to",
    "who", "am", "been", "list", "up", "there", "yet", "actually", "like", "personally",
    "stuff",
}  # fmt: skip
# "What do you have on me?", "What can you tell me about me?": no memory word, still recall.
_ABOUT_ME_ONLY = re.compile(
    r"^(?:.* )?(?:what (?:do|did) you have on|what can you tell me about|what do you have about"
    r"|who am i to) (?:me|myself)$"
)
# "What do you remember from what I told you?": about the person without "me".
_ABOUT_ME_SAID = re.compile(r"\bwho i am\b|\bi (?:have |ve )?(?:told|said to|shared with) you\b")
# "Who am I?", "Tell me who I am.": asked as the whole request, the answer is what is known.
_WHO_AM_I = re.compile(r"\bwho (?:am i|i am)$")


def asks_what_is_remembered(words: str) -> bool:
    """Whether `words` asks what voxloop remembers or knows about the person."""
    said = set(words.split())
    if (_ABOUT_ME_ONLY.match(words) or _WHO_AM_I.search(words)) and said <= (
        MEMORY_WORDS | ALLOWED | FILLER
    ):
        return True
    about_me = bool(said & ABOUT_ME) or bool(_ABOUT_ME_SAID.search(words))
    return about_me and only_words(words, MEMORY_WORDS, ALLOWED)


_FIRST_PERSON = [
    (r"^The user's\b", "your"),
    (r"^The user is\b", "you are"),
    (r"^The user was\b", "you were"),
    (r"^The user wants you to\b", "you want me to"),
    (r"^The user has\b", "you have"),
    (r"^The user (\w+?)(?:ies)\b", r"you \1y"),
    (r"^The user (\w+?)es\b(?=\s)", r"you \1e"),
    (r"^The user (\w+?)s\b", r"you \1"),
    (r"^The user\b", "you"),
]
# The facts say "they" for the person ("Ada and I live in Ghent" -> "Ada and they live in
# Ghent"), but also keep the person's own "they" for others ("two cats and they are black").
_THEIR = [
    (r"\btheirs\b", "yours"),
    (r"\btheir\b", "your"),
    (r"\bthemselves\b", "yourself"),
    (r"\bthem\b", "you"),
    (r"\bthey\b", "you"),  # "they live" -> "you live": the verb's form is the same
]
# A lower-case word ending in s, as most plurals do: "they" after it may be those things.
_PLURAL = re.compile(r"\b[a-z]+[^s'\W]s\b")
_NOT_PLURAL = {"was", "has", "does", "his", "its", "this", "yes", "always", "plus"}


def to_second_person(fact: str) -> str:
    """'The user's name is Ada.' -> 'your name is Ada' (how voxloop says it back)."""
    text = fact.strip().rstrip(".")
    for pattern, replacement in _FIRST_PERSON:
        text = re.sub(pattern, replacement, text, count=1)
    pronoun = re.search(r"\bthe(?:y|ir|irs|m|mselves)\b", text)
    before = text[: pronoun.start()] if pronoun else ""
    if not {w for w in _PLURAL.findall(before) if w not in _NOT_PLURAL}:
        for pattern, replacement in _THEIR:
            text = re.sub(pattern, replacement, text)
    return text[0].lower() + text[1:] if text[:2] != "I " else text


@skill("recall")
def recall(words: str, context: SkillContext) -> str | None:
    """Read back what is remembered about the person."""
    if not asks_what_is_remembered(words):
        return None
    if context.memory is None or context.session is None:
        return "I do not keep anything about you in this conversation: it is not stored."
    known = [to_second_person(fact.text) for fact in context.memory.facts(context.session)]
    if not known:
        return "I do not know anything about you yet. Tell me, and I will remember it."
    if len(known) == 1:
        return f"I remember that {known[0]}."
    return "I remember that " + ", that ".join(known[:-1]) + f", and that {known[-1]}."
