"""Every text the language model reads, personas, the kind of each utterance, and the messages
sent to the model.

Tests and measured figures depend on these texts word for word: change one, measure again.
This module imports nothing of voxloop's at run time, so config.py can take its default
persona from here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from voxloop.text import words

if TYPE_CHECKING:
    from voxloop.llm import Message

DEFAULT_SYSTEM_PROMPT = (
    "You are voxloop, a helpful voice assistant. Your words are spoken aloud, so answer in "
    "one to three short, plain sentences. No markdown, no lists, no emoji."
)
# Notes the model reads in its system prompt, about the person and the conversation (memory).
FACTS_NOTE = "What you know about the user: "
CONVERSATION_SUMMARY_NOTE = "Summary of the conversation so far: "

# Long recordings (longform.py): how the model is asked to summarize one and to answer about it.
RECORDING_SYSTEM_PROMPT = (
    "You write short, plain notes about recordings, using only what the recording says. "
    "No lists, no markdown."
)
# Asked to summarize a whole text, small models restate its opening and drop what comes later
# (docs/benchmarks.md, summaries). So the transcript is retold in small parts, a few sentences
# each, with the names and numbers; the retellings are the summary, in order. (An opening
# sentence on "what the recording is" was dropped: it was where the model interpreted, and a
# small model answering a follow-up question took it for the recording's words.) The request
# comes after the text: small models follow what they read last.
RETELL_REQUEST = (
    "Retell this part in at most {sentences} short sentences, in the order it comes, one event "
    "or fact per sentence: who did what, with every name, number, amount, day, time, place, "
    "decision and result as the transcript gives them. Leave out greetings and small talk. Use "
    "only what the transcript says."
)
RETELL_PART = "{label}, part {number} of {total}:\n{part}\n\n"  # comes before RETELL_REQUEST
TRANSCRIPT_LABEL = "Transcript"
NOTES_LABEL = "Notes on consecutive parts of the recording, in order"
RECORDING_NOTE_HEADER = (
    "The user gave you a recording ({length} long) to talk about. Its summary: {summary}"
)
PASSAGES_INTRO = "Passages of the recording that may answer the question ([minute:second] text):"


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
    """The persona (with `notes`: what the model should know), earlier turns, the new words.

    A reply cut off before the person heard any of it is kept as "…" (so the page shows it);
    the model does not see it: a small model takes it for an example and answers "…" too.
    """
    system = system_prompt
    if notes:
        system += "\n\n" + "\n".join(notes)
    said = [m for m in history if m["role"] != "assistant" or words(m["content"])]
    return [{"role": "system", "content": system}, *said, {"role": "user", "content": user_text}]


# ISO 639-1 code (what Whisper detects) -> the language's English name, for the model.
LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan", "cs": "Czech",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew",
    "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
    "ja": "Japanese", "ko": "Korean", "ms": "Malay", "nb": "Norwegian", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "th": "Thai",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "yue": "Cantonese",
    "zh": "Chinese",
}  # fmt: skip
PERSONA_LANGUAGE = "en"  # the personas are written in English; replies follow them by default


def language_note(language: str) -> str | None:
    """Tell the model to answer in the person's language (None: the persona's own)."""
    name = LANGUAGE_NAMES.get(language)
    if language == PERSONA_LANGUAGE or name is None:
        return None
    return f"The user speaks {name}. Always answer in {name}, never in English."


CHARS_PER_TOKEN = 3.0  # conservative: English averages about 4 characters a token


def estimate_tokens(text: str) -> int:
    """Tokens `text` takes at most, about (no tokenizer needed, works for every backend)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class Utterance(Enum):
    """What kind of thing the person said; it decides how the model is asked to answer."""

    QUESTION = "question"  # the persona's short direct answer; no extra tokens to evaluate
    UNCLEAR = "unclear"  # cut off or too short to answer: ask back instead of guessing
    DETAIL = "detail"  # "explain in detail": a longer answer is allowed


HINTS = {
    Utterance.DETAIL: (
        "(I want a detailed answer: explain fully, in as many sentences as it takes. "
        "The usual limit of three sentences does not apply.)"
    ),
}
_DETAIL = re.compile(
    r"\b(in (?:more |great |full )?detail|detailed|step by step|elaborate|tell me more|"
    r"explain (?:fully|thoroughly|everything)|long(?:er)? (?:answer|explanation)|"
    r"everything about|more about)\b",
    re.I,
)
# A sentence that stops on one of these words was cut off ("What is the capital of").
_DANGLING = re.compile(
    r"\b(the|a|an|my|your|our|their|and|or|but|because|of|is|are|than|if)\W*$",
    re.I,
)
# ... but these end whole questions: a preposition left at the end ("What is water made of?")
# and the verb of a question inside a sentence ("Do you know where my keys are?"; not "In
# which country are", a question itself, cut off).
_STRANDED = re.compile(
    r"\b(made|afraid|scared|frightened|full|think|thinking|thought|proud|sure|aware|capable|"
    r"fond|sick|tired|consist|consists|composed|ashamed|jealous|dreaming|heard|approve)\W+of\W*$"
    r"|^\W*(?!(?:in|on|at|from|to|for|with|by|about|during|since)\b)\w+\b.*"
    r"\b(what|who|whom|whose|where|when|why|how|which)\W+\w+.*\b(is|are)\W*$",
    re.I,
)
_SHORT_BUT_CLEAR = re.compile(
    r"^\W*(hi|hello|hey|thanks|thank you|yes|no|okay|ok|bye|goodbye|why|how|really|sure|"
    r"stop|continue|go on|good morning|good night)\W*$",
    re.I,
)
MIN_CLEAR_WORDS = 2


def classify(text: str, in_conversation: bool = False, language: str = "en") -> Utterance:
    """How to answer `text`: directly and briefly, by asking back, or in detail.

    In a conversation a single word is often an answer ("Paris."), so it is not unclear.
    The patterns are English; in other languages every utterance is answered directly.
    """
    if language != PERSONA_LANGUAGE:
        return Utterance.QUESTION
    if _DETAIL.search(text):
        return Utterance.DETAIL
    too_short = len(text.split()) < MIN_CLEAR_WORDS and not _SHORT_BUT_CLEAR.match(text)
    if _cut_off(text) or (too_short and not in_conversation):
        return Utterance.UNCLEAR
    return Utterance.QUESTION


def _cut_off(text: str) -> bool:
    """Whether `text` stops where a sentence cannot end ("What is the capital of")."""
    words = text.strip().rstrip(" .!?…")
    return bool(_DANGLING.search(words)) and not _STRANDED.search(words)


def clarifying_question(text: str) -> str:
    """What to say back to words that were cut off or too short to answer.

    Written here, not by the model: small models answer a guess even when told not to.
    """
    heard = text.strip().rstrip(" .!?…")
    if _cut_off(heard):
        return f"I heard “{heard}”, and then you stopped. What would you like to know?"
    return f"I only heard “{heard}”. Could you tell me a little more about what you want?"


def with_hint(user_text: str, kind: Utterance) -> str:
    """The words the model sees: what was said, and how to answer it when that is unusual."""
    hint = HINTS.get(kind)
    return f"{user_text}\n\n{hint}" if hint else user_text


SUMMARY_PROMPT = (
    "You keep the notes of a conversation between a user and a voice assistant. Write one "
    "short paragraph in the third person that keeps every name, number, fact, preference and "
    "request the user mentioned, and what was answered. No lists."
)


def summary_messages(previous_summary: str, transcript: str) -> list[Message]:
    """Ask the model to fold `transcript` into the summary so far."""
    earlier = f"Notes so far: {previous_summary}\n\n" if previous_summary else ""
    return [
        {"role": "system", "content": SUMMARY_PROMPT},
        {"role": "user", "content": f"{earlier}New part of the conversation:\n{transcript}"},
    ]
