"""Long recordings: streamed decoding, VAD segments with progress, chunked summaries within the
model's context, flat memory, and follow-up questions answered from the recording.

The long recording (10+ minutes) is made of real recordings (recordings.long_recording):
the 44 s two_cities reading, repeated, with other LibriVox readings, Beckett and spoken cards
between the repeats. It is transcribed and summarized in a fresh process, whose peak memory is
its own (bench.measure_longform, the same measurement as `voxloop bench longform`).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import voxloop_bench as bench
from voxloop import audio, grounding, longform, scheduling
from voxloop.config import Settings, load_settings
from voxloop.errors import AudioTooLong, BadAudio, ConfigError, NoSpeech
from voxloop.llm import Message
from voxloop.longform import LongRecording, LongTranscript, Segment
from voxloop.pipeline import Pipeline
from voxloop.prompts import RECORDING_SYSTEM_PROMPT, RETELL_REQUEST, estimate_tokens
from voxloop.text import sentences
from voxloop.turns import Done, TurnRequest
from voxloop_bench import recordings

LONG_SECONDS = 10 * 60 + 15
SHORT_SECONDS = 60  # also warms the engines up before the long one is measured
# Words of the two_cities reading, which fills most of the long recording.
TWO_CITIES_WORDS = (
    "times", "wisdom", "foolish", "belief", "incredul", "season", "light", "dark", "hope",
    "despair", "epoch", "period", "heaven", "superlative", "authorit", "comparison", "dickens",
)  # fmt: skip
MIN_TWO_CITIES_REPEATS = 8  # the long mix has one two_cities reading every ~55 s
SEGMENT_TOLERANCE_SECONDS = 0.1  # segment times are placed on 32 ms VAD frames


@pytest.fixture(scope="module")
def short_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-minute recording made of real recordings."""
    folder = tmp_path_factory.mktemp("short")
    return recordings.long_recording(folder / "short.mp3", SHORT_SECONDS)


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording of more than ten minutes made of real recordings."""
    folder = tmp_path_factory.mktemp("long")
    return recordings.long_recording(folder / "long.mp3", LONG_SECONDS)


@pytest.fixture(scope="module")
def long_run(settings: Settings, long_file: Path, short_file: Path) -> dict[str, Any]:
    """The long recording transcribed and summarized in a fresh process, with its figures."""
    return bench.measure_longform(settings, long_file, short_file)


@pytest.fixture(scope="module")
def long_recording(long_run: dict[str, Any]) -> LongRecording:
    """What the fresh process made of the long recording."""
    return LongRecording.from_json(long_run["recording"])


# The long recording, with the real engines


def test_progress_is_reported_once_per_segment(
    long_run: dict[str, Any], long_file: Path, settings: Settings
) -> None:
    total = audio.duration(long_file, max_seconds=3600, max_megabytes=100)
    assert total >= LONG_SECONDS
    ends = [end for _, end, _ in longform.speech_segments(long_file, settings)]
    progress = long_run["progress"]
    assert len(progress) == len(ends) > LONG_SECONDS / settings.longform.segment_max_seconds
    # After each segment: how far into the recording it ends; the last one completes the work.
    assert progress[:-1] == pytest.approx([min(end, total) / total for end in ends[:-1]])
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_long_recording_is_transcribed_in_segments(
    long_recording: LongRecording, settings: Settings
) -> None:
    transcript = long_recording.transcript
    assert transcript.complete and transcript.duration >= LONG_SECONDS
    starts = [segment.start for segment in transcript.segments]
    assert starts == sorted(starts)
    cap = settings.longform.segment_max_seconds + SEGMENT_TOLERANCE_SECONDS
    for segment in transcript.segments:
        assert 0 <= segment.start < segment.end <= transcript.duration + SEGMENT_TOLERANCE_SECONDS
        assert segment.end - segment.start <= cap
    text = transcript.text.lower()
    assert text.count("worst of times") >= MIN_TWO_CITIES_REPEATS
    assert "dashwood" in text and "clubs" in text  # the details between the repeats


def test_summary_is_short_and_names_the_main_content(
    long_recording: LongRecording, settings: Settings
) -> None:
    summary = long_recording.summary
    print("summary:", summary)
    assert any(word in summary.lower() for word in TWO_CITIES_WORDS), summary
    assert len(sentences(summary)) <= settings.longform.summary_sentences
    first, *_ = sentences(summary)
    assert len(summary.split()) <= max(settings.longform.summary_words, len(first.split()))
    assert "*" not in summary and "\n" not in summary  # plain text for the voice


def test_memory_stays_flat_while_the_recording_grows(long_run: dict[str, Any]) -> None:
    rss = long_run["peak_rss_mb"]
    print("peak RSS (MB):", rss)
    minutes = LongRecording.from_json(long_run["recording"]).transcript.duration / 60
    decoded_mb = minutes * 60 * audio.SAMPLE_RATE * audio.FLOAT32_BYTES / 2**20  # ~3.7 MB/min
    # After a one-minute recording has warmed every engine up, ten more minutes may not add
    # even half of what the decoded audio alone would take.
    assert rss["transcription"] - rss["warm"] < decoded_mb / 2
    assert rss["summary"] - rss["warm"] < decoded_mb / 2
    # Holding the audio would add a quarter of it in the second half alone.
    assert rss["transcription"] - rss["half_transcribed"] < decoded_mb / 4


def test_follow_up_question_is_answered_from_the_recording(
    long_recording: LongRecording, pipeline: Pipeline, settings: Settings
) -> None:
    question = "In the recording, who had leisure to consider what was in his power to do?"
    notes = longform.follow_up_notes(question, long_recording, settings.longform)
    assert any("Dashwood" in note for note in notes[1:])  # the passage that answers it
    assert long_recording.summary in notes[0]
    events = list(pipeline.run(TurnRequest(text=question, notes=notes)))
    done = events[-1]
    assert isinstance(done, Done)
    print("reply:", done.turn.reply)
    assert "dashwood" in done.turn.reply.lower()


# A one-minute recording: the whole flow in this process, and stopping early


def test_process_reports_both_stages_on_one_bar(short_file: Path, settings: Settings) -> None:
    assert longform.is_long_recording(short_file, settings)
    calls: list[tuple[float, str]] = []
    recording = longform.process(short_file, settings, lambda f, m: calls.append((f, m)))
    fractions = [fraction for fraction, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(f == pytest.approx(longform.TRANSCRIPTION_SHARE) for f in fractions)
    assert calls[0][1].startswith("Transcribed") and calls[-1][1] == "Summary ready"
    assert "times" in recording.transcript.text and recording.summary


def test_a_long_recording_gives_way_to_a_person(short_file: Path, settings: Settings) -> None:
    priorities: list[int] = []

    def progress(_fraction: float, _message: str) -> None:
        priorities.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    turn_heard = scheduling.waiting.begin()  # a turn waits for its first audio
    worker = threading.Thread(target=longform.process, args=(short_file, settings, progress))
    worker.start()
    worker.join(timeout=3)  # (each step waits up to longform.yield_max_seconds: 10 s)
    assert worker.is_alive() and priorities == []  # not a segment transcribed meanwhile
    turn_heard()
    worker.join()
    assert priorities and set(priorities) == {scheduling.LOWEST_PRIORITY}


def test_cancel_stops_transcription_early(short_file: Path, settings: Settings) -> None:
    cancel = threading.Event()
    transcript = longform.transcribe(short_file, settings, lambda _f, _m: cancel.set(), cancel)
    assert not transcript.complete and len(transcript.segments) == 1
    assert longform.summarize(transcript, settings, cancel=cancel) == ""
    stopped = longform.process(short_file, settings, cancel=cancel)  # stopped before it began
    assert not stopped.transcript.complete and not stopped.transcript.segments
    assert stopped.summary == ""


def test_a_short_clip_is_not_a_long_recording(settings: Settings) -> None:
    clip = (
        recordings.POCKETSPHINX_DATA / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav"
    )
    assert not longform.is_long_recording(clip, settings)


# Bad input


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _text(path: Path) -> Path:
    path.write_text("This is a text file, not a recording. " * 50)
    return path


def _missing(path: Path) -> Path:
    return path


def _silence(path: Path) -> Path:
    path.write_bytes(audio.wav_bytes(np.zeros(5 * audio.SAMPLE_RATE, np.int16), audio.SAMPLE_RATE))
    return path


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (_empty, BadAudio, "empty"),
        (_text, BadAudio, "not audio"),
        (_missing, BadAudio, "No such file"),
        (_silence, NoSpeech, "No speech"),
    ],
    ids=["empty", "text", "missing", "silence"],
)
def test_bad_input_is_a_clear_error(
    make: Callable[[Path], Path],
    error: type[Exception],
    message: str,
    tmp_path: Path,
    settings: Settings,
) -> None:
    path = make(tmp_path / "upload.mp3")
    with pytest.raises(error, match=message):
        longform.transcribe(path, settings)


def test_too_long_and_too_big_are_refused(short_file: Path) -> None:
    limited = load_settings(longform={"max_seconds": 30})
    with pytest.raises(AudioTooLong, match="limit is 30 s"):
        longform.transcribe(short_file, limited)
    tiny = load_settings(longform={"max_megabytes": 0.01})
    with pytest.raises(AudioTooLong, match="MB"):
        longform.transcribe(short_file, tiny)


def test_a_header_without_duration_is_counted_and_limits_hold(
    short_file: Path, tmp_path: Path
) -> None:
    # WebM written to a pipe (like a browser's recording) has no duration in its header.
    webm = tmp_path / "recorded.webm"
    with webm.open("wb") as out:
        subprocess.run(
            [audio.ffmpeg_exe(), "-v", "error", "-i", str(short_file), "-c:a", "libopus",
             "-f", "webm", "pipe:1"],
            stdout=out, check=True,
        )  # fmt: skip
    expected = audio.duration(short_file, max_seconds=3600, max_megabytes=100)
    assert audio.duration(webm, max_seconds=3600, max_megabytes=100) == pytest.approx(
        expected, abs=0.1
    )
    with pytest.raises(AudioTooLong):
        audio.duration(webm, max_seconds=30, max_megabytes=100)


def test_stream_decodes_in_blocks(short_file: Path) -> None:
    blocks = list(audio.stream(short_file, max_seconds=3600))
    assert max(len(block) for block in blocks) == audio.STREAM_BLOCK_SECONDS * audio.SAMPLE_RATE
    total = sum(len(block) for block in blocks) / audio.SAMPLE_RATE
    assert total == pytest.approx(
        audio.duration(short_file, max_seconds=3600, max_megabytes=100), abs=0.1
    )
    with pytest.raises(AudioTooLong):
        list(audio.stream(short_file, max_seconds=10))


# Chunking and summary logic (a scripted model stands in for the real one)


def test_chunks_keep_every_word_in_order_within_the_budget() -> None:
    pieces = [f"Sentence number {i} says something." for i in range(200)]
    pieces[50] = "word " * 400  # one piece longer than a chunk: split between words
    pieces[60] = "   "
    chunks = longform.chunk_text(pieces, max_tokens=100)
    assert all(estimate_tokens(chunk) <= 100 for chunk in chunks)
    assert " ".join(chunks).split() == " ".join(pieces).split()
    assert len(chunks) < len(pieces) / 5  # packed, not one piece a chunk
    assert longform.chunk_text([], 100) == [] and longform.chunk_text(["a", "b"], 100) == ["a b"]


def test_chunk_budget_fits_the_model_context(settings: Settings) -> None:
    assert longform.chunk_budget(settings) == settings.longform.chunk_tokens
    prompt = estimate_tokens(RECORDING_SYSTEM_PROMPT) + estimate_tokens(RETELL_REQUEST)
    small = load_settings(llm={"context_tokens": 900}, longform={"chunk_tokens": 600})
    budget = longform.chunk_budget(small)
    assert budget < small.longform.chunk_tokens
    assert budget + prompt + small.longform.summary_tokens <= small.llm.context_tokens
    with pytest.raises(ConfigError, match="context_tokens"):
        longform.chunk_budget(load_settings(llm={"context_tokens": 400}))


class ScriptedModel:
    """Answers every request with the same few sentences, and records the requests."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.requests: list[tuple[list[Message], int]] = []

    def stream(
        self, messages: list[Message], *, max_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """The scripted answer, word by word."""
        self.requests.append((messages, max_tokens))
        yield from (f"{word} " for word in self.answer.split())


def test_summaries_are_combined_in_rounds_until_they_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not grounded: the scripted model says the same three sentences whatever it retells.
    small = load_settings(
        llm={"context_tokens": 800}, longform={"chunk_summary_tokens": 60, "grounded": False}
    )
    model = ScriptedModel("This part is about the sea. Ships sail on it. Ports are busy. And then")
    monkeypatch.setattr(longform, "get_chat_model", lambda _settings: model)
    segments = tuple(
        Segment(i * 10.0, i * 10.0 + 9, f"Passage {i} about ships and the sea. " * 4)
        for i in range(300)
    )
    calls: list[float] = []
    summary = longform.summarize(
        LongTranscript(segments, 3000.0), small, lambda f, _: calls.append(f)
    )
    for messages, max_tokens in model.requests:  # every request fits the model's context
        used = sum(estimate_tokens(m["content"]) for m in messages) + max_tokens
        assert used <= small.llm.context_tokens
    requests = [messages[-1]["content"] for messages, _ in model.requests]
    parts = sum(r.startswith("Transcript, part ") for r in requests)
    assert requests[0].startswith(f"Transcript, part 1 of {parts}:")
    rounds = [r for r in requests if r.startswith("Notes on consecutive parts")]
    assert len(rounds) > 1  # the notes did not fit: retold together, in rounds
    assert requests[-1].startswith("Notes on consecutive parts")
    assert calls == sorted(calls) and calls[-1] == 1.0 and len(calls) == len(model.requests) + 1
    # Whole sentences only: the cut-off "And then" is dropped; repeats are said once. The
    # rounds kept 3 sentences where 12 were asked for: the notes themselves, spread along the
    # recording, are the summary (all the same sentence here).
    assert summary == "This part is about the sea."


def test_notes_spread_evenly_from_the_first_to_the_last() -> None:
    notes = [f"Event {number} happened." for number in range(40)]
    assert longform.spread(notes, 5, 1000) == [notes[i] for i in (0, 10, 20, 29, 39)]
    assert len(" ".join(longform.spread(notes, 24, 30)).split()) <= 30  # words bound it too
    assert longform.spread(notes, 24, 2) == notes[:1]


def test_each_part_of_the_recording_gets_its_share_of_the_summary(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    model = ScriptedModel("The keeper lit the lamp.")
    monkeypatch.setattr(longform, "get_chat_model", lambda _settings: model)
    chapter = "The keeper climbed the stairs and lit the lamp again. " * 8  # one part each
    segments = tuple(Segment(i * 30.0, i * 30.0 + 29, chapter) for i in range(6))
    longform.summarize(LongTranscript(segments, 180.0), settings)
    requests = [messages[-1]["content"] for messages, _ in model.requests]
    parts = [r for r in requests if r.startswith("Transcript, part ")]
    assert len(parts) == len(segments)  # every part of the recording is read and retold
    share = settings.longform.summary_sentences // len(parts)
    assert all(f"at most {share} short sentences" in r for r in parts)


def test_a_summary_sentence_the_transcript_does_not_support_is_dropped(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    # The model retells the part, then "corrects" a name from its own knowledge and invents
    # an interpretation: neither is in what was said.
    model = ScriptedModel(
        "The keeper Thomas lit the lamp at dusk. Martin Luther nailed his theses to the door. "
        "It is a tale about the human condition and mortality."
    )
    monkeypatch.setattr(longform, "get_chat_model", lambda _settings: model)
    said = "Every evening at dusk the keeper, Thomas, climbed the stairs and lit the lamp."
    transcript = LongTranscript((Segment(0.0, 20.0, said),), 20.0)
    assert longform.summarize(transcript, settings) == "The keeper Thomas lit the lamp at dusk."
    unchecked = settings.model_copy(
        update={"longform": settings.longform.model_copy(update={"grounded": False})}
    )
    assert "Martin Luther" in longform.summarize(transcript, unchecked)


def test_grounding_accepts_numbers_said_in_words_and_refuses_new_ones() -> None:
    said = "The bridge opened in fourteen fifty five and cost twelve thousand pounds."
    assert not grounding.unsupported("The bridge opened in 1455 and cost 12,000 pounds.", said)
    (flagged,) = grounding.unsupported("The bridge cost 15000 pounds.", said)
    assert flagged.numbers == ("15000",)
    (flagged,) = grounding.unsupported("The bridge was built by Gutenberg.", said)
    assert flagged.names == ("Gutenberg",)


def test_whole_sentences_drop_a_cut_off_repetition() -> None:
    text = "**The talk** is about ships. It names three ports. Clubs, clubs, clubs, clubs"
    assert longform.whole_sentences(text, 4) == "The talk is about ships. It names three ports."
    assert longform.whole_sentences("One. Two. Three. Four. Five.", 2) == "One. Two."
    assert longform.whole_sentences("no ending at all", 2) == "no ending at all"
    long_first = "One two three four five six. Seven eight. Nine."
    assert longform.whole_sentences(long_first, 3, max_words=4) == "One two three four five six."
    assert (
        longform.whole_sentences(long_first, 3, max_words=8)
        == "One two three four five six. Seven eight."
    )


# Follow-up notes


SEGMENTS = (
    Segment(0.0, 20.0, "It was the best of times, it was the worst of times."),
    Segment(21.0, 30.0, "And Mr. John Dashwood had then leisure to consider his power."),
    Segment(31.0, 50.0, "It was the best of times, it was the worst of times."),
    Segment(61.0, 65.0, "Ever tried. Ever failed. No matter. Try again."),
    Segment(125.0, 128.0, "Ten of clubs."),
)


def test_passages_are_ranked_by_rare_shared_words() -> None:
    ranked = longform.rank_passages("What about trying and failing?", SEGMENTS)
    assert ranked == [SEGMENTS[3]]
    ranked = longform.rank_passages("Was Dashwood's the worst?", SEGMENTS)
    assert ranked[0] == SEGMENTS[1]  # "dashwood" is in one passage, "worst" in two
    assert ranked.count(SEGMENTS[0]) == 1 and SEGMENTS[2] not in ranked  # repeats once


def test_follow_up_notes_hold_the_summary_and_passages_within_budget() -> None:
    recording = LongRecording(LongTranscript(SEGMENTS, 130.0), "A reading about two times.")
    settings = load_settings().longform
    notes = longform.follow_up_notes("Which clubs, and who was Dashwood?", recording, settings)
    assert notes[0].startswith("The user gave you a recording (2:10 long)")
    assert notes[2:] == [
        "[0:21] And Mr. John Dashwood had then leisure to consider his power.",
        "[2:05] Ten of clubs.",
    ]
    assert estimate_tokens("\n".join(notes)) <= settings.follow_up_tokens
    assert longform.follow_up_notes("Anything else?", recording, settings) == notes[:1]
    tight = settings.model_copy(update={"follow_up_tokens": 70})
    tight_notes = longform.follow_up_notes("Which clubs, and Dashwood?", recording, tight)
    assert tight_notes == [*notes[:2], "[2:05] Ten of clubs."]  # the passage that fits
    assert LongRecording.from_json(recording.to_json()) == recording


def test_a_long_summary_leaves_room_for_the_passages() -> None:
    summary = " ".join(f"Event number {n} of the reading happened then." for n in range(60))
    recording = LongRecording(LongTranscript(SEGMENTS, 130.0), summary)
    settings = load_settings().longform
    notes = longform.follow_up_notes("Which clubs, and who was Dashwood?", recording, settings)
    assert "[2:05] Ten of clubs." in notes  # the passage that answers is there
    assert "Event number 0 of" in notes[0] and "Event number 59" not in notes[0]
    assert estimate_tokens("\n".join(notes)) <= settings.follow_up_tokens


# A whole story, through the real engines


STORY_VOICE = "jf_alpha"  # Kokoro: another engine than the bench's recording of the story
# The story's last events, each named by any of its words: a summary that restates the
# opening (the keeper, the lighthouse) names none of them.
STORY_ENDING = {
    "the storm": ("storm", "gale", "tempest"),
    "the boat": ("boat", "vessel", "ship", "trawler"),
    "the rescue": ("rescu", "saved", "saving", "towed", "towing", "rope", "safety", "safe"),
}


def test_a_spoken_story_is_summarized_to_its_end(tmp_path: Path, settings: Settings) -> None:
    from voxloop_bench import summaries

    story = next(r for r in summaries.evaluation_set() if r.id == "lighthouse")
    pause = np.zeros(round(summaries.PARAGRAPH_PAUSE_SECONDS * audio.SAMPLE_RATE), np.float32)
    spoken = [summaries.spoken(p, STORY_VOICE, settings.cache_dir) for p in story.paragraphs]
    path = tmp_path / "lighthouse.wav"
    joined = np.concatenate([piece for paragraph in spoken for piece in (paragraph, pause)])
    path.write_bytes(audio.wav_bytes(audio.to_int16(joined), audio.SAMPLE_RATE))
    assert longform.is_long_recording(path, settings)
    recording = longform.process(path, settings)
    print("summary:", recording.summary)
    summary = recording.summary.lower()
    missing = [
        event
        for event, words in STORY_ENDING.items()
        if not any(re.search(rf"\b{word}", summary) for word in words)  # "rescu": rescued
    ]
    assert not missing, (missing, recording.summary)
    assert not grounding.unsupported(recording.summary, recording.transcript.text)


def test_the_summaries_bench_runs_one_split_and_each_held_out_set_has_its_key_facts() -> None:
    from voxloop_bench import summaries

    for split in summaries.SPLITS:
        recordings = summaries.evaluation_set(split)
        assert recordings and {r.split for r in recordings} == {split}
        assert all(len(r.facts) >= 8 and all(f.any for f in r.facts) for r in recordings)
    assert len(summaries.evaluation_set()) == sum(
        len(summaries.evaluation_set(s)) for s in summaries.SPLITS
    )
