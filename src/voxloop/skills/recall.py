"""'What do you remember about me?': the person's stored facts, read back."""

from __future__ import annotations

import re

from voxloop.skills import SkillContext, skill

_ASK = re.compile(
    r"^(?:(?:hey |ok |okay )?computer )?(?:please )?(?:(?:can|could) you )?"
    r"(?:what (?:do|did) you (?:remember|know|recall|learn|have stored|keep|store|save)|"
    r"what have you (?:remembered|learned|learnt|stored|saved|kept)|"
    r"tell me what you (?:remember|know)|what is in your memory|"
    r"what facts do you (?:have|know|remember)|"
    r"what do you have (?:stored|saved|on file|in (?:your )?memory)(?: in (?:your )?memory)?|"
    r"(?:do you )?remember anything|what information do you have)"
    r"(?: about me| of me| on me| about myself| about the user)(?: so far)?$"
)
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
    (r"\btheir\b", "your"),
    (r"\bthem\b", "you"),
    (r"\bthey are\b", "you are"),
]


def to_second_person(fact: str) -> str:
    """'The user's name is Ada.' -> 'your name is Ada' (how voxloop says it back)."""
    text = fact.strip().rstrip(".")
    for pattern, replacement in _FIRST_PERSON:
        text = re.sub(pattern, replacement, text, count=1 if pattern.startswith("^") else 0)
    return text[0].lower() + text[1:] if text[:2] != "I " else text


@skill("recall")
def recall(words: str, context: SkillContext) -> str | None:
    """Read back what is remembered about the person."""
    if not _ASK.match(words):
        return None
    if context.memory is None or context.session is None:
        return "I do not keep anything about you in this conversation: it is not stored."
    known = [to_second_person(fact.text) for fact in context.memory.facts(context.session)]
    if not known:
        return "I do not know anything about you yet. Tell me, and I will remember it."
    if len(known) == 1:
        return f"I remember that {known[0]}."
    return "I remember that " + ", that ".join(known[:-1]) + f", and that {known[-1]}."
