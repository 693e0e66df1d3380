"""Long recordings: decoded as a stream, split at pauses, transcribed segment by segment,
summarized in chunks that fit the model's context, and searched for follow-up questions.

Memory stays flat as a recording grows: one block of decoded audio and two segments (the one
being transcribed and the next, at most `longform.segment_max_seconds` each) are held at a
time; only the text accumulates.
"""

from __future__ import annotations

import json
import logging
import math
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from voxloop import audio, scheduling
from voxloop.config import LongformSettings, Settings
from voxloop.errors import ConfigError, NoSpeech, VoxloopError
from voxloop.grounding import supported_sentences
from voxloop.llm import Message, get_chat_model
from voxloop.prompts import (
    CHARS_PER_TOKEN,
    NOTES_LABEL,
    PASSAGES_INTRO,
    RECORDING_NOTE_HEADER,
    RECORDING_SYSTEM_PROMPT,
    RETELL_PART,
    RETELL_REQUEST,
    TRANSCRIPT_LABEL,
    estimate_tokens,
)
from voxloop.stt import get_transcriber
from voxloop.text import content_words, sentences, speakable, words

Progress = Callable[[float, str], None]  # (fraction done, 0..1; a line for people)
T = TypeVar("T")
log = logging.getLogger(__name__)

# Share of `process`'s progress bar that transcription takes (summarizing takes the rest):
# about its share of the time on the project's machine (docs/benchmarks.md).
TRANSCRIPTION_SHARE = 0.5
CONTEXT_MARGIN_TOKENS = 64  # chat-template tokens around the messages, and slack
MIN_CHUNK_TOKENS = 200  # a context with less room than this for transcript is too small
IN_PROCESS_BACKEND = "llamacpp"  # the backend whose model `longform.model` names

# A round of retelling that keeps fewer than 1/SHORT_ROUND of the sentences asked for is not
# used: the notes, spread along the recording, are the summary instead.
SHORT_ROUND = 2
PART_GROWTH = 1.2  # larger parts, step by step, until each part has a sentence of the summary

SENTENCE_ENDS = (".", "!", "?", "…")


@dataclass(frozen=True)
class Segment:
    """A stretch of speech: where it is in the recording (seconds) and what was said."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class LongTranscript:
    """A long recording transcribed: its segments in order and its length in seconds.

    `complete` is False when transcription was stopped (cancel) before the end.
    """

    segments: tuple[Segment, ...]
    duration: float
    complete: bool = True

    @property
    def text(self) -> str:
        """The whole transcript."""
        return " ".join(segment.text for segment in self.segments)


@dataclass(frozen=True)
class LongRecording:
    """A transcribed and summarized recording, kept for follow-up questions."""

    transcript: LongTranscript
    summary: str

    def to_json(self) -> str:
        """The recording as JSON, to store it."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: str) -> LongRecording:
        """A recording stored with `to_json`."""
        fields: dict[str, Any] = json.loads(data)
        transcript = fields["transcript"]
        segments = tuple(Segment(**segment) for segment in transcript["segments"])
        return cls(
            LongTranscript(segments, transcript["duration"], transcript["complete"]),
            fields["summary"],
        )


def is_long_recording(path: str | Path, settings: Settings) -> bool:
    """Whether a file is long enough (`longform.min_seconds`) to be handled as a recording.

    A file that is not audio, or is over the long-recording limits, raises BadAudio here.
    """
    longform = settings.longform
    seconds = audio.duration(
        path, max_seconds=longform.max_seconds, max_megabytes=longform.max_megabytes
    )
    return seconds >= longform.min_seconds


def process(
    path: str | Path,
    settings: Settings,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> LongRecording:
    """Transcribe and summarize a long recording, with one progress bar for both stages
    (giving way to conversations: `longform.yield_to_turns`).

    Errors as `transcribe`; when stopped with `cancel`, the summary is "".
    """
    if settings.longform.yield_to_turns:
        return scheduling.in_background(_process, path, settings, progress, cancel)
    return _process(path, settings, progress, cancel)


def _process(
    path: str | Path,
    settings: Settings,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> LongRecording:
    report = progress or _no_progress
    transcript = transcribe(path, settings, _scaled(report, 0.0, TRANSCRIPTION_SHARE), cancel)
    if not transcript.complete:  # stopped: there may be nothing to summarize
        return LongRecording(transcript, "")
    summary = summarize(transcript, settings, _scaled(report, TRANSCRIPTION_SHARE, 1.0), cancel)
    return LongRecording(transcript, summary)


def give_way(settings: Settings, cancel: threading.Event | None) -> None:
    """Before each step of a long recording's work: wait while turns wait for their first
    audio (`longform.yield_to_turns`), at most `longform.yield_max_seconds`."""
    if settings.longform.yield_to_turns:
        scheduling.waiting.until_none(settings.longform.yield_max_seconds, cancel)


def transcribe(
    path: str | Path,
    settings: Settings,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> LongTranscript:
    """Transcribe a recording segment by segment, calling `progress` after each segment.

    Bad input raises BadAudio (AudioTooLong over the limits), silence NoSpeech. Setting
    `cancel` stops early: the transcript so far comes back with `complete=False`.
    """
    longform = settings.longform
    total = audio.duration(
        path, max_seconds=longform.max_seconds, max_megabytes=longform.max_megabytes
    )
    transcriber = get_transcriber(transcription_settings(settings))
    report = progress or _no_progress
    segments: list[Segment] = []
    for (start, end, speech), last in _mark_last(speech_segments(path, settings)):
        give_way(settings, cancel)
        if cancel is not None and cancel.is_set():
            return LongTranscript(tuple(segments), total, complete=False)
        if text := transcriber.transcribe(speech).text.strip():
            segments.append(Segment(start, end, text))
        done = total if last else min(end, total)  # the last segment ends the work
        report(done / total, f"Transcribed {_clock(done)} of {_clock(total)}")
    if not segments:
        raise NoSpeech("No speech heard in the recording.")
    return LongTranscript(tuple(segments), total)


def speech_segments(
    path: str | Path, settings: Settings
) -> Iterator[tuple[float, float, np.ndarray]]:
    """(start, end, audio) of each stretch of speech, cut at pauses (`longform.pause_ms`) and
    at `longform.segment_max_seconds`; the silence between them is skipped."""
    from voxloop.stt.timed import speech_pieces  # it imports Segment from here

    yield from speech_pieces(
        audio.stream(path, max_seconds=settings.longform.max_seconds), settings
    )


def summarize(
    transcript: LongTranscript,
    settings: Settings,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """A spoken summary of a transcript of any length, from its beginning to its end: its
    events and facts in order.

    The transcript is retold in parts of `chunk_tokens` (larger for long recordings, so that
    each part has a sentence), up to `note_sentences` sentences each; while the retellings are
    more than the summary holds (very long recordings), consecutive ones are retold together
    in rounds. `progress` is called after each model call; `cancel` stops early and returns "".
    """
    longform = settings.longform
    room = longform.summary_sentences
    chunks = _parts(transcript, settings)
    if not chunks:
        raise NoSpeech("There is nothing in the recording to summarize.")
    # The summary's sentences shared evenly along the recording: events late in it count
    # as much as the opening.
    most = max(1, min(longform.note_sentences, room // len(chunks)))
    writer = _Writer(settings, _planned_calls(len(chunks), most, settings), progress, cancel)
    notes = writer.retell(chunks, TRANSCRIPT_LABEL, most, longform.chunk_summary_tokens)
    while (fitting := _fitting_sentences(notes, room, longform.summary_words)) < len(notes):
        if writer.cancelled:
            break
        groups = chunk_text(notes, _room(settings))
        most = max(1, fitting // len(groups))
        retold = writer.retell(groups, NOTES_LABEL, most, longform.summary_tokens)
        if len(retold) >= len(notes) and not writer.cancelled:
            raise ConfigError(_too_small(settings))
        if len(retold) * SHORT_ROUND < fitting:
            # The model kept a few sentences of many (it sometimes restates one stretch):
            # the notes themselves, taken evenly along the recording, cover it better.
            notes = spread(notes, room, longform.summary_words)
            break
        notes = retold
    if writer.cancelled:
        return ""
    writer.finish()
    summary = whole_sentences(" ".join(notes), longform.summary_sentences, longform.summary_words)
    if not summary:
        raise VoxloopError("The language model wrote no summary of the recording.")
    return summary


def transcription_settings(settings: Settings) -> Settings:
    """`settings` with the speech model's threads for long recordings (`longform.stt_threads`):
    a number other than `stt.threads` loads a copy of the model of its own, whose threads,
    started in the low-priority thread of `process`, keep that priority."""
    stt = settings.stt.model_copy(update={"threads": settings.longform.stt_threads})
    return settings.model_copy(update={"stt": stt})


def summary_settings(settings: Settings) -> Settings:
    """`settings` with the language model that writes summaries: `longform.model` (on the
    in-process backend) at `longform.temperature`; by default the conversation's own model."""
    longform = settings.longform
    in_process = settings.llm.backend == IN_PROCESS_BACKEND
    model = longform.model if longform.model and in_process else settings.llm.model
    temperature = settings.llm.temperature if longform.temperature is None else longform.temperature
    llm = settings.llm.model_copy(update={"model": model, "temperature": temperature})
    return settings.model_copy(update={"llm": llm})


def chunk_budget(settings: Settings) -> int:
    """Transcript tokens per retelling call: `longform.chunk_tokens`, within the model's context."""
    return min(settings.longform.chunk_tokens, _room(settings))


def _room(settings: Settings) -> int:
    """Tokens of text one summary call can be given, beside its request and its answer."""
    longform = settings.longform
    prompt = estimate_tokens(RECORDING_SYSTEM_PROMPT) + max(
        estimate_tokens(RETELL_REQUEST), estimate_tokens(NOTES_LABEL)
    )
    answer = max(longform.chunk_summary_tokens, longform.summary_tokens)
    room = settings.llm.context_tokens - prompt - answer - CONTEXT_MARGIN_TOKENS
    if room < MIN_CHUNK_TOKENS:
        raise ConfigError(_too_small(settings))
    return room


def _too_small(settings: Settings) -> str:
    return (
        f"llm.context_tokens ({settings.llm.context_tokens}) is too small to summarize "
        "recordings; raise it or lower longform.chunk_summary_tokens and summary_tokens."
    )


def chunk_text(pieces: Iterable[str], max_tokens: int) -> list[str]:
    """Pack consecutive pieces of text, in order, into chunks of at most `max_tokens`
    (estimated); a piece longer than that is split between words."""
    chunks: list[str] = []
    current = ""
    for piece in _fitting(pieces, max_tokens):
        joined = f"{current} {piece}" if current else piece
        if current and estimate_tokens(joined) > max_tokens:
            chunks.append(current)
            joined = piece
        current = joined
    return [*chunks, current] if current else chunks


def _fitting(pieces: Iterable[str], max_tokens: int) -> Iterator[str]:
    """The non-empty pieces, each at most `max_tokens` long."""
    width = math.floor(max_tokens * CHARS_PER_TOKEN)
    for piece in pieces:
        yield from textwrap.wrap(piece, width=width)  # also collapses runs of whitespace


def spread(notes: list[str], room: int, max_words: int) -> list[str]:
    """As many notes as fit in `room` sentences and `max_words` words, taken evenly from the
    first to the last, in order (at least the first)."""
    for count in range(min(room, len(notes)), 1, -1):
        step = (len(notes) - 1) / (count - 1)
        chosen = [notes[round(number * step)] for number in range(count)]
        if len(" ".join(chosen).split()) <= max_words:
            return chosen
    return notes[:1]


def _fitting_sentences(notes: list[str], room: int, max_words: int) -> int:
    """How many sentences of the notes' length the summary holds: at most `room`, and (with
    sentences as long as theirs) at most `max_words` words."""
    words = sum(len(note.split()) for note in notes)
    return min(room, len(notes) * max_words // max(words, 1))


def _parts(transcript: LongTranscript, settings: Settings) -> list[str]:
    """The transcript in parts of `chunk_tokens`, or larger ones when the recording has more
    such parts than the summary has sentences (within the model's context): then each part
    still gets a sentence, and no round of retelling is needed."""
    room = _room(settings)
    sentences_for_parts = settings.longform.summary_sentences
    size = max(
        chunk_budget(settings), math.ceil(estimate_tokens(transcript.text) / sentences_for_parts)
    )
    while True:
        # Parts end at segment ends, so they come out a little smaller than `size`.
        parts = chunk_text((segment.text for segment in transcript.segments), min(size, room))
        if len(parts) <= sentences_for_parts or size >= room:
            return parts
        size = math.ceil(size * PART_GROWTH)


def _planned_calls(chunks: int, most: int, settings: Settings) -> int:
    """Model calls to summarize `chunks` parts of a transcript retold in `most` sentences
    each (a round more or less)."""
    notes_tokens = chunks * settings.longform.chunk_summary_tokens
    rounds = 0 if chunks * most < settings.longform.summary_sentences else 1
    return chunks + rounds * math.ceil(notes_tokens / _room(settings))


class _Writer:
    """Asks the model for one text at a time, and reports each call as progress."""

    def __init__(
        self,
        settings: Settings,
        planned: int,
        progress: Progress | None,
        cancel: threading.Event | None,
    ) -> None:
        self.settings = settings
        self.model = get_chat_model(summary_settings(settings))
        self.check_sources = settings.longform.grounded
        self.planned, self.done = planned, 0
        self.report = progress or _no_progress
        self.cancel = cancel

    @property
    def cancelled(self) -> bool:
        """Whether the work was stopped."""
        return self.cancel is not None and self.cancel.is_set()

    def retell(self, parts: list[str], label: str, most: int, max_tokens: int) -> list[str]:
        """Each part retold in at most `most` sentences: all the sentences, in order."""
        told: list[str] = []
        for number, part in enumerate(parts, start=1):
            request = RETELL_PART.format(label=label, number=number, total=len(parts), part=part)
            answer = self.write(
                request + RETELL_REQUEST.format(sentences=most),
                max_tokens,
                f"Summarized part {number} of {len(parts)}",
            )
            retold = sentences(whole_sentences(answer, most))
            told += self.grounded(retold, part) if self.check_sources else retold
        return told

    def grounded(self, retold: list[str], source: str) -> list[str]:
        """The sentences of `retold` that `source` supports; the others are logged."""
        kept = supported_sentences(retold, source)
        for sentence in retold:
            if sentence not in kept:
                log.info("Summary sentence dropped, not in the transcript: %s", sentence)
        return kept

    def finish(self) -> None:
        """Report the summary ready (the plan may have been off by a round)."""
        self.report(1.0, "Summary ready")

    def write(self, request: str, max_tokens: int, message: str) -> str:
        """The model's answer to one request ("" once cancelled)."""
        give_way(self.settings, self.cancel)
        if self.cancelled:
            return ""
        messages = [
            Message(role="system", content=RECORDING_SYSTEM_PROMPT),
            Message(role="user", content=request),
        ]
        text = "".join(self.model.stream(messages, max_tokens=max_tokens, cancel=self.cancel))
        self.done += 1
        # The plan may be off by a round; only `finish` reports completion.
        fraction = min(self.done, self.planned - 1) / self.planned
        self.report(fraction, message)
        return text


def whole_sentences(text: str, max_sentences: int, max_words: int | None = None) -> str:
    """The first distinct sentences of a model's text as plain speakable text: at most
    `max_sentences`, and no more than `max_words` words unless the first sentence has more.

    A last sentence cut off by the token limit is dropped (small models sometimes repeat a
    word until the limit), unless it is all there is.
    """
    found = sentences(speakable(text))
    if len(found) > 1 and not found[-1].endswith(SENTENCE_ENDS):
        found = found[:-1]
    kept: list[str] = []
    for sentence in list(dict.fromkeys(found))[:max_sentences]:
        words = len(" ".join([*kept, sentence]).split())
        if kept and max_words is not None and words > max_words:
            break
        kept.append(sentence)
    return " ".join(kept)


def follow_up_notes(
    question: str, recording: LongRecording, settings: LongformSettings
) -> list[str]:
    """Notes for a question about a recording (for `TurnRequest.notes`): its summary and the
    transcript passages that best match the question, within `follow_up_tokens`."""
    # The summary takes at most half the room: the passages are what answer a detail.
    summary = _within(recording.summary, settings.follow_up_tokens // 2)
    header = RECORDING_NOTE_HEADER.format(
        length=_clock(recording.transcript.duration), summary=summary
    )
    room = settings.follow_up_tokens - estimate_tokens(header) - estimate_tokens(PASSAGES_INTRO)
    chosen: list[Segment] = []
    for segment in rank_passages(question, recording.transcript.segments):
        if len(chosen) == settings.follow_up_passages:
            break
        if estimate_tokens(_passage(segment)) <= room:
            chosen.append(segment)
            room -= estimate_tokens(_passage(segment))
    if not chosen:
        return [header]
    in_order = sorted(chosen, key=lambda segment: segment.start)
    return [header, PASSAGES_INTRO, *(_passage(segment) for segment in in_order)]


def _within(text: str, max_tokens: int) -> str:
    """The first sentences of `text` that fit in `max_tokens` (at least its first sentence)."""
    kept: list[str] = []
    for sentence in sentences(text):
        if kept and estimate_tokens(" ".join([*kept, sentence])) > max_tokens:
            break
        kept.append(sentence)
    return " ".join(kept)


def _passage(segment: Segment) -> str:
    return f"[{_clock(segment.start)}] {segment.text}"


def rank_passages(question: str, segments: Sequence[Segment]) -> list[Segment]:
    """The segments sharing words with `question`, best first; a word that few segments
    contain counts more (inverse document frequency). Repeated passages are listed once."""
    bags = [content_words(segment.text) for segment in segments]
    containing = Counter(word for bag in bags for word in bag)
    wanted = content_words(question)

    def score(bag: set[str]) -> float:
        return sum(math.log((1 + len(bags)) / (1 + containing[word])) + 1 for word in wanted & bag)

    scored = sorted(
        ((score(bag), index) for index, bag in enumerate(bags) if wanted & bag),
        key=lambda pair: (-pair[0], pair[1]),
    )
    seen: set[str] = set()
    ranked = []
    for _, index in scored:
        key = " ".join(words(segments[index].text))
        if key not in seen:
            seen.add(key)
            ranked.append(segments[index])
    return ranked


def _clock(seconds: float) -> str:
    """'m:ss', or 'h:mm:ss' from an hour on."""
    minutes, secs = divmod(round(seconds), audio.SECONDS_PER_MINUTE)
    hours, minutes = divmod(minutes, audio.SECONDS_PER_MINUTE)  # minutes per hour
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _mark_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item, and whether it is the last one (found by looking one item ahead)."""
    iterator = iter(items)
    for previous in iterator:  # runs once at most: the inner loop takes the rest
        for item in iterator:
            yield previous, False
            previous = item
        yield previous, True


def _scaled(progress: Progress, low: float, high: float) -> Progress:
    """`progress` for one stage that takes the part from `low` to `high` of the whole."""
    return lambda fraction, message: progress(low + fraction * (high - low), message)


def _no_progress(fraction: float, message: str) -> None:
    """Progress is not shown."""
