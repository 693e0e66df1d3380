"""Durable facts a person states about themselves ("My name is Ada.", "I'm vegetarian.").

Extraction is by patterns, not by the language model: it costs nothing per turn, never
invents a fact, and a small model is unreliable at it. Each fact has a key, so a newer
statement replaces an older one ("I live in Paris." then "I live in Rome.").
Facts are rewritten about "the user", which small models read more reliably than "I".
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """A fact about the person; `key` says which older fact it replaces."""

    key: str
    text: str


# (pattern on one sentence, key template, fact template); groups are rewritten to the 3rd person.
_PATTERNS: list[tuple[str, str, str]] = [
    (r"my name is (?P<x>.+)", "name", "The user's name is {x}."),
    (r"(?:please )?call me (?P<x>(?-i:[A-Z])[\w'-]*)", "name", "The user's name is {x}."),
    (
        r"(?:please )?(?P<verb>call|wake|remind|text|email) me (?P<x>.+)",
        "ask {verb}",
        "The user wants you to {verb} them {x}.",
    ),
    (
        r"my (?P<what>[\w' ]{1,30}?) (?P<be>is|are) (?P<x>.+)",
        "my {what}",
        "The user's {what} {be} {x}.",
    ),
    (
        r"i(?: am|'m) (?P<x>(?:a |an )?(?:vegetarian|vegan|allergic|diabetic|married|single|"
        r"divorced|retired|pregnant|left-handed|right-handed|lactose intolerant|"
        r"\d+ years old|from |an? (?!bit |little |lot )).*)",
        "i am {first}",
        "The user is {x}.",
    ),
    (r"i (?P<verb>live|work|study|grew up) (?P<x>.+)", "i {verb}", "The user {verbs} {x}."),
    (
        r"i (?P<verb>like|love|prefer|enjoy|hate|dislike|eat|drink|speak|play|own|have|"
        r"don't like|do not like|don't eat|do not eat|can't eat|cannot eat) (?P<x>.+)",
        "i {verb} {first}",
        "The user {verbs} {x}.",
    ),
    (r"i was born (?P<x>.+)", "born", "The user was born {x}."),
    (r"remember that (?P<x>.+)", "remember {x}", "{x}."),
]
PATTERNS = [(re.compile(p, re.I), key, text) for p, key, text in _PATTERNS]
# First-person words and their third-person forms, for the rest of a stated fact.
_PRONOUNS = {
    "i": "they",
    "i'm": "they are",
    "me": "them",
    "my": "their",
    "mine": "theirs",
    "myself": "themselves",
    "am": "are",
    "i've": "they have",
    "i'd": "they would",
}
_PRONOUN = re.compile(r"\b(" + "|".join(re.escape(p) for p in _PRONOUNS) + r")\b", re.I)
_THIRD_PERSON = {
    "have": "has",
    "don't like": "doesn't like",
    "do not like": "does not like",
    "don't eat": "doesn't eat",
    "do not eat": "does not eat",
    "can't eat": "can't eat",
    "cannot eat": "cannot eat",
    "grew up": "grew up",
}
# What follows "I have", "my ... is" and the like that is about the moment, not the person.
_TRANSIENT = re.compile(
    r"^(?:an? |no |one more )?(?:question|idea|problem|bit|little|moment|minute|second|"
    r"doubt|guess|point|answer|turn|pleasure)s?\b|^to |^(?:it|that|this|them|you)$",
    re.I,
)
# Sentences, and clauses that start a new statement ("My name is Ada, I am vegetarian.").
_SENTENCE = re.compile(
    r"(?<=[.!?])\s+|[,;]\s+(?=(?:and |but )?(?:i|i'm|my|call me|remember)\b)", re.I
)
_NOT_A_FACT = re.compile(r"\?\s*$|^\s*(?:if|when|what|who|how|why|do|does|can|could|would)\b", re.I)


def extract(text: str) -> list[Fact]:
    """The durable facts stated in `text` (questions and hypotheticals state none)."""
    facts = []
    for sentence in _SENTENCE.split(text.strip()):
        if _NOT_A_FACT.search(sentence):
            continue
        clause = re.sub(r"^(?:and|but|so)\s+", "", sentence.strip(), flags=re.I)
        if fact := _match(clause.rstrip(".!").strip()):
            facts.append(fact)
    return facts


def _match(sentence: str) -> Fact | None:
    for pattern, key, template in PATTERNS:
        if not (match := pattern.fullmatch(sentence)):
            continue
        if _TRANSIENT.search(match["x"]) or _TRANSIENT.search(match.groupdict().get("what", "")):
            continue
        groups = {name: _third_person(value) for name, value in match.groupdict().items()}
        verb = match.groupdict().get("verb", "").lower()
        groups["verbs"] = _conjugate(verb)
        groups["verb"] = verb
        groups["first"] = groups["x"].split()[0].lower() if groups["x"] else ""
        # A fact that opens with a pronoun says who it is about: "Their sister" is unclear.
        text = re.sub(
            r"^their\b", "the user's", re.sub(r"^they\b", "the user", template.format(**groups))
        )
        return Fact(key=key.format(**groups).lower(), text=text[0].upper() + text[1:])
    return None


def _third_person(words: str) -> str:
    """'my sister and me' -> 'their sister and them'."""
    return _PRONOUN.sub(lambda m: _PRONOUNS[m.group(1).lower()], words).strip()


def _conjugate(verb: str) -> str:
    """The verb after 'the user': 'live' -> 'lives', 'study' -> 'studies'."""
    if not verb or verb in _THIRD_PERSON:
        return _THIRD_PERSON.get(verb, verb)
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    if verb.endswith(("s", "sh", "ch", "x", "o")):
        return verb + "es"
    return verb + "s"
