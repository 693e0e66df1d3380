"""Does a text say only what its source says? The check each summary sentence passes.

A sentence is *unsupported* by a source (a recording's transcript) when more than half of its
content words are nowhere in the source, or when it has a number or a name the source lacks.
Content words are compared by their stems and first letters ("dangerous" is supported by
"danger"); words about the recording itself ("the speaker describes") do not count; a number in
digits is supported by the same number said in words ("1455", "fourteen fifty five").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voxloop.prompts import estimate_tokens
from voxloop.text import STOPWORDS, sentences, stem, words

UNSUPPORTED_SHARE = 0.5  # more than this share of a sentence's content words absent: unsupported
MIN_CONTENT_WORDS = 2  # fewer content words than this: too little to judge a sentence by
PREFIX_LETTERS = 5  # words match on their first letters: "dangerous" and "danger"
MIN_CONTENT_LETTERS = 3  # shorter words are not content ("go", "ok")
# Words a summary uses to talk about a recording, not about what is in it (stems), and the
# beginnings of such words ("describes", "description").
META_WORDS = frozenset({
    "recording", "record", "transcript", "speaker", "narrator", "story", "talk", "lecture",
    "part", "tell", "told", "say", "said", "about", "main", "topic", "point", "overall", "begin",
    "began", "start", "end", "finally", "then", "later", "after", "before", "next", "also",
    "another", "other", "some", "many", "while", "during", "event", "include", "focus",
    "user", "assistant",  # a conversation's summary names its two sides
})  # fmt: skip
META_PREFIXES = ("summar", "describ", "descript", "discuss", "mention", "explain", "narrat")
_NUMBER_COMMAS = re.compile(r"(?<=\d),(?=\d{3})")
_NAME_PUNCTUATION = ".,;:!?\"'()"


@dataclass(frozen=True)
class Checked:
    """A sentence checked against a source, and what of it the source lacks."""

    sentence: str
    absent: tuple[str, ...]  # content words (stems) nowhere in the source
    numbers: tuple[str, ...]  # numbers the source does not say
    names: tuple[str, ...]  # names the source does not have
    supported: bool


def normalized(text: str) -> str:
    """Lower case, numbers without thousands commas, hyphens and currency signs as spaces."""
    text = _NUMBER_COMMAS.sub("", text.lower())
    return re.sub(r"[-$€£]", " ", text)


def checked(text: str, source: str) -> list[Checked]:
    """Every sentence of `text`, checked against `source`."""
    heard = _content(source)
    heard_prefixes = {word[:PREFIX_LETTERS] for word in heard}
    results = []
    for sentence in sentences(text):
        content = _content(sentence)
        absent = sorted(
            w for w in content if w not in heard and w[:PREFIX_LETTERS] not in heard_prefixes
        )
        numbers = tuple(w for w in absent if w.isdigit() and not _spelled_in(w, heard))
        names = tuple(n for n in _names(sentence) if _key(n) in absent)
        mostly_new = len(content) >= MIN_CONTENT_WORDS and len(absent) > UNSUPPORTED_SHARE * len(
            content
        )
        supported = not (mostly_new or numbers or names)
        results.append(Checked(sentence, tuple(absent), numbers, names, supported))
    return results


def unsupported(text: str, source: str) -> list[Checked]:
    """The sentences of `text` that `source` does not support."""
    return [result for result in checked(text, source) if not result.supported]


def supported_sentences(found: list[str], source: str) -> list[str]:
    """The sentences of `found` that `source` supports, in order."""
    dropped = {flagged.sentence for flagged in unsupported(" ".join(found), source)}
    return [sentence for sentence in found if sentence not in dropped]


STATEMENT_KEPT = "The user said: "


def faithful_summary(
    written: str, previous: str, turns: list[tuple[str, str]], max_tokens: int
) -> str:
    """A conversation's new summary that keeps what the person told: the sentences of the
    model's `written` summary that the conversation supports, then every sentence of the
    `previous` summary and every statement of the person's (not a question) that they leave
    out, word for word; beyond `max_tokens` (estimated) the oldest of those go first.

    A small model asked for a summary sometimes refuses ("I'm sorry, but I can't assist with
    that.") or keeps the topic and drops the fact ("... the secret word."); the person's own
    words are then all the assistant would know (docs/benchmarks.md, memory).
    """
    said = [user for user, _reply in turns]
    source = " ".join([previous, *said, *(reply for _user, reply in turns)])
    if unsupported(written, source):
        written = " ".join(supported_sentences(sentences(written), source))
    statements = " ".join(s for user in said for s in sentences(user) if not s.endswith("?"))
    lost = [c.sentence for c in unsupported(previous, written)]
    lost += [STATEMENT_KEPT + c.sentence for c in unsupported(statements, written)]
    while lost and estimate_tokens(" ".join([written, *lost])) > max_tokens:
        lost.pop(0)
    return " ".join([written, *lost]).strip()


def _names(sentence: str) -> list[str]:
    """Capitalized words after the first one: names, places, titles."""
    words = [word.strip(_NAME_PUNCTUATION) for word in sentence.split()[1:]]
    return [word for word in words if word[:1].isupper() and word[1:].islower()]


def _content(text: str) -> set[str]:
    found = {stem(w) for w in words(normalized(text)) if w not in STOPWORDS}
    return {w for w in found if w.isdigit() or (len(w) >= MIN_CONTENT_LETTERS and not _meta(w))}


def _key(word: str) -> str:
    return stem(word.lower())


def _meta(word: str) -> bool:
    return word in META_WORDS or word.startswith(META_PREFIXES)


_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
MILLION = 1_000_000
THOUSAND = 1000
HUNDRED = 100
TEEN = 20
TEN = 10


def number_words(value: int) -> list[str]:
    """The words that say `value` (below a million) in English: 35000 -> thirty five thousand."""
    if value >= THOUSAND:
        rest = value % THOUSAND
        return [*number_words(value // THOUSAND), "thousand", *(number_words(rest) if rest else [])]
    if value >= HUNDRED:
        rest = value % HUNDRED
        return [_ONES[value // HUNDRED], "hundred", *(number_words(rest) if rest else [])]
    if value < TEEN:
        return [_ONES[value]]
    return [_TENS[value // TEN], *([_ONES[value % TEN]] if value % TEN else [])]


def _spelled_in(digits: str, heard: set[str]) -> bool:
    """Whether a number written in digits is said in words in the source."""
    value = int(digits)
    if value >= MILLION:
        return False
    said = [number_words(value)]
    if THOUSAND <= value < TEN * THOUSAND:  # a year: 1455 is "fourteen fifty five"
        said.append([*number_words(value // HUNDRED), *number_words(value % HUNDRED)])
    return any(all(_key(w) in heard for w in words) for words in said)
