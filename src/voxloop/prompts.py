"""Personas (system prompts) and the message list sent to the language model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voxloop.config import DEFAULT_SYSTEM_PROMPT
from voxloop.llm import Message


@dataclass(frozen=True)
class Persona:
    """A named system prompt a person can pick and edit."""

    id: str
    name: str
    system_prompt: str


PERSONAS = {
    p.id: p
    for p in (
        Persona("assistant", "Helpful assistant", DEFAULT_SYSTEM_PROMPT),
        Persona(
            "magic8",
            "Magic 8 Ball",
            "You are a talking Magic 8 Ball. Answer every question with one short, cryptic "
            "proverb of at most fifteen words, in the voice of an ancient oracle. If the "
            "question is nonsense, answer exactly: Foolish questions get foolish answers.",
        ),
    )
}


def build_messages(
    system_prompt: str,
    history: list[Message],
    user_text: str,
    notes: Sequence[str] = (),
) -> list[Message]:
    """The persona (with `notes`: what the model should know), earlier turns, the new words."""
    system = system_prompt
    if notes:
        system += "\n\n" + "\n".join(notes)
    return [
        Message(role="system", content=system),
        *history,
        Message(role="user", content=user_text),
    ]
