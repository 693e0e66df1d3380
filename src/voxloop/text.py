"""Text made for speaking: markdown and emoji removed, and a streaming sentence chunker."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_CODE_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE_CODE = re.compile(r"`([^`]*)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_BARE_URL = re.compile(r"https?://(?:www\.)?([^/\s]+)\S*")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.M)
_BULLET = re.compile(r"^\s*[-*+•]\s+", re.M)
_NUMBERED = re.compile(r"^\s*(\d+)[.)]\s+", re.M)
_QUOTE = re.compile(r"^\s*>\s?", re.M)
_RULE = re.compile(r"^\s*([-*_])\s*(?:\1\s*){2,}$", re.M)
_BOLD = re.compile(r"(\*\*|__)(.+?)\1", re.S)
_ITALIC = re.compile(r"(?<![\w*])([*_])(?!\s)(.+?)(?<!\s)\1(?![\w*])")
_STRAY_MARKUP = re.compile(r"[*_#|~`<>]+")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols & pictographs ext.
    "\U00002600-\U000027bf"  # misc symbols, dingbats
    "\U0001f1e6-\U0001f1ff"  # flags
    "\U00002b00-\U00002bff"  # arrows, stars
    "\ufe0f\u200d\u20e3"  # variation selector, zero-width joiner, keycap
    "]+"
)
# A title's full stop ends no sentence: "Mr. Bell kept his job" is one sentence, not two.
TITLES = ("Mr", "Mrs", "Ms", "Dr", "St", "Prof", "Mt")
_NOT_A_TITLE = "".join(rf"(?<!\b{title})" for title in TITLES)
_SENTENCE_END = re.compile(rf"{_NOT_A_TITLE}[.!?…]+[\"')\]]*\s+|\n+")
_CLAUSE_END = re.compile(r"[,;:—–]\s+")
_SPACES = re.compile(r"[ \t]+")
_LIST_NUMBER = re.compile(r"\s*\d+")
_WORD_START = re.compile(r"(?<!\S)\S")
_NOT_AFTER_A_TITLE = "".join(rf"(?<!\b{title}\.)" for title in TITLES)
_SENTENCE_SPLIT = re.compile(rf"(?<=[.!?…]){_NOT_AFTER_A_TITLE}\s+|\n+")

# The word tokenizer: letters and digits of any script ("café" is one word), with one inner
# apostrophe ("it's"). Two others have another job and stay: recordings.normalize spells
# numbers out as WER compares them, and skills.normalize keeps arithmetic signs and decimals.
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "by",
    "from", "about", "as", "is", "are", "was", "were", "be", "been", "being", "it", "its", "it's",
    "this", "that", "these", "those", "there", "here", "what", "which", "who", "whom", "whose",
    "when", "where", "why", "how", "do", "does", "did", "have", "has", "had", "i", "you", "he",
    "she", "we", "they", "me", "him", "her", "us", "them", "my", "your", "his", "our", "their",
    "not", "no", "so", "if", "then", "than", "too", "very", "can", "could", "would", "should",
    "will", "may", "might", "must", "just", "also", "into", "over", "out", "up", "down",
})  # fmt: skip
# Word endings dropped before words are compared ("tried", "trying" -> "try"), in this order.
SUFFIXES = (
    ("'s", ""),
    ("ies", "y"),
    ("ied", "y"),
    ("ying", "y"),
    ("ing", ""),
    ("ed", ""),
    ("s", ""),
)
MIN_STEM_LENGTH = 3  # "bus", "red" and "sing" keep their ending


def words(text: str) -> list[str]:
    """The words of `text`, lower-cased, without punctuation ("it's" stays one word)."""
    return WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    """The content words of `text` (no stop words), lower-cased, with common endings dropped."""
    return {stem(word) for word in words(text) if word not in STOPWORDS}


def stem(word: str) -> str:
    """`word` without a common ending: "tried", "trying" -> "try"; "bus" stays "bus"."""
    for suffix, replacement in SUFFIXES:
        stemmed = word.removesuffix(suffix)
        if stemmed != word and len(stemmed + replacement) >= MIN_STEM_LENGTH and stemmed[-1] != "s":
            return stemmed + replacement
    return word


def speakable(text: str) -> str:
    """Turn markdown-ish model output into plain text a TTS voice reads well."""
    text = _CODE_FENCE.sub("\n", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _BARE_URL.sub(r"\1", text)
    text = _RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _NUMBERED.sub(r"\1, ", text)
    text = _QUOTE.sub("", text)
    text = _BOLD.sub(r"\2", text)
    text = _ITALIC.sub(r"\2", text)
    text = _EMOJI.sub("", text)
    text = _STRAY_MARKUP.sub(" ", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    # A line break (heading, list item) becomes a pause: end each broken line like a sentence.
    # The last line may be cut mid-sentence by the chunker and is left as it is.
    ended = [_end_sentence(line) for line in lines[:-1] if line] + lines[-1:]
    return " ".join(line for line in ended if line).strip()


def sentences(text: str) -> list[str]:
    """Split plain text into sentences (what TTS engines synthesize one at a time)."""
    return [part.strip() for part in _SENTENCE_SPLIT.split(text) if part.strip()]


def _end_sentence(line: str) -> str:
    return line if line[-1] in ".!?…:;," else line + "."


@dataclass
class SpeechChunker:
    """Cut a stream of tokens into speakable pieces: a short first clause, then sentences.

    The first piece ends at the first clause boundary once it has `first_min_words` words, or,
    if no boundary has come by `first_max_words` words, at the next word: speech starts early,
    at a small cost in intonation. The rest of that opening sentence is the next piece, cut at
    a clause end once it has `rest_clause_words` words: it must be ready before the first
    piece's second or so of sound has played. Later pieces are whole sentences of at least
    `min_chars`.
    """

    first_min_words: int = 2
    first_max_words: int = 3
    rest_clause_words: int = 6
    min_chars: int = 24
    _buffer: str = ""
    _emitted: int = field(default=0, init=False)
    _in_opening: bool = field(default=True, init=False)  # no sentence has been ended yet

    def push(self, token: str) -> list[str]:
        """Add streamed text; return the pieces that are now complete."""
        self._buffer += token
        pieces = []
        while (cut := self._next_cut()) is not None:
            raw, self._buffer = self._buffer[:cut], self._buffer[cut:]
            self._in_opening = self._in_opening and not sentence_ends(raw)
            if piece := speakable(raw):
                pieces.append(piece)
                self._emitted += 1
        return pieces

    def flush(self) -> list[str]:
        """The rest of the text once the stream has ended."""
        raw, self._buffer = self._buffer, ""
        piece = speakable(raw)
        return [piece] if piece else []

    def _word_cut(self, words: int) -> int | None:
        """Where word number `words` + 1 starts, once it has started (so word `words` is whole)."""
        starts = [m.start() for m in _WORD_START.finditer(self._buffer)]
        if len(starts) <= words or sentence_ends(self._buffer[: starts[words]]):
            return None
        return starts[words]

    def _next_cut(self) -> int | None:
        if self._buffer.count("```") % 2 == 1:  # inside a code block: wait for its end
            return None
        if self._emitted == 0:
            for match in _CLAUSE_END.finditer(self._buffer):
                if len(self._buffer[: match.start()].split()) >= self.first_min_words:
                    return match.end()
            if (cut := self._word_cut(self.first_max_words)) is not None:
                return cut
        elif self._in_opening:  # the rest of the sentence the first piece began
            if ends := sentence_ends(self._buffer):
                return ends[0].end()
            for match in _CLAUSE_END.finditer(self._buffer):
                if len(self._buffer[: match.start()].split()) >= self.rest_clause_words:
                    return match.end()
            return None
        for match in sentence_ends(self._buffer):
            before = self._buffer[: match.start()]
            if self._emitted == 0 or len(before) >= self.min_chars:
                return match.end()
        return None


def sentence_ends(text: str) -> list[re.Match[str]]:
    """Sentence ends in streamed `text` (each with the space after it, which shows the end is
    one), leaving out list numbers ("2. " opens an item, ends nothing)."""
    return [
        match
        for match in _SENTENCE_END.finditer(text)
        if not _LIST_NUMBER.fullmatch(text[: match.start()])
    ]


def until_repeated(pieces: Iterable[str]) -> Iterator[str]:
    """The streamed reply `pieces`, ended where it begins to say again a sentence it has said.

    Small models can fall into a loop ("Sunscreen. Sunscreen. Sunscreen. ...") until the token
    limit, seconds of the same word spoken. The first sentence passes as it streams (the first
    sound starts within it); each later one passes once it has ended, as the chunker speaks
    them anyway, so a repeat is never shown or heard.
    """
    said: set[str] = set()
    current, shown, holding = "", 0, False  # the sentence being written; how much has passed
    for piece in pieces:
        current += piece
        while ends := sentence_ends(current):
            sentence, current = current[: ends[0].end()], current[ends[0].end() :]
            if (key := _sentence_key(sentence)) in said:
                return
            if key:
                said.add(key)
            if sentence[shown:]:
                yield sentence[shown:]
            shown, holding = 0, True
        if not holding and current[shown:]:
            yield current[shown:]
            shown = len(current)
    if current[shown:] and _sentence_key(current) not in said:
        yield current[shown:]


def _sentence_key(sentence: str) -> str:
    """A sentence as `until_repeated` compares it: its words, whatever the case and marks."""
    return " ".join(words(sentence))
