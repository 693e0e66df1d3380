"""Turn detection on real recordings fed frame by frame, as a microphone delivers them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voxloop import audio
from voxloop.config import Settings
from voxloop.vad import TurnDetector
from voxloop_bench.recordings import CARDS, LIBRIVOX, POCKETSPHINX_DATA
from voxloop_bench.speech_to_text import load_clip

MIC_CHUNK = 320  # 20 ms, what a browser worklet delivers
START_TOLERANCE_MS = 150
END_TOLERANCE_MS = 250


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * audio.SAMPLE_RATE), np.float32)


def _speech_span_ms(samples: np.ndarray) -> tuple[int, int]:
    """First and last loud 10 ms window: a ground truth that does not use the VAD under test."""
    window = audio.SAMPLE_RATE // 100
    rms = np.sqrt((samples[: len(samples) // window * window].reshape(-1, window) ** 2).mean(1))
    loud = np.flatnonzero(rms > 0.2 * rms.max())
    return int(loud[0]) * 10, int(loud[-1] + 1) * 10


def _feed(detector: TurnDetector, samples: np.ndarray) -> list:  # type: ignore[type-arg]
    events = []
    for i in range(0, len(samples), MIC_CHUNK):
        events += detector.feed(samples[i : i + MIC_CHUNK])
    return events


def test_two_utterances_give_two_turns_at_the_right_times(settings: Settings) -> None:
    first = audio.load(
        POCKETSPHINX_DATA / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav"
    )
    second = audio.load(POCKETSPHINX_DATA / "cards" / "001.wav")
    gap = 2.0
    stream = np.concatenate([_silence(1.0), first, _silence(gap), second, _silence(2.0)])
    first_at = 1000
    second_at = first_at + len(first) * 1000 // audio.SAMPLE_RATE + int(gap * 1000)
    events = [e for e in _feed(TurnDetector(settings.vad), stream) if e.kind in ("start", "end")]

    assert [e.kind for e in events] == ["start", "end", "start", "end"]
    for (start, end), offset, recording in (
        (events[:2], first_at, first),
        (events[2:], second_at, second),
    ):
        speech_from, speech_to = _speech_span_ms(recording)
        # "start" is decided once start_ms of speech has been heard
        expected_start = offset + speech_from + settings.vad.start_ms
        assert abs(start.at_ms - expected_start) <= START_TOLERANCE_MS, (
            start.at_ms,
            expected_start,
        )
        expected_end = offset + speech_to + settings.vad.silence_ms
        assert abs(end.at_ms - expected_end) <= END_TOLERANCE_MS, (end.at_ms, expected_end)
        # the turn's audio holds the whole utterance (with a little pre-roll)
        assert len(end.audio) / audio.SAMPLE_RATE >= (speech_to - speech_from) / 1000


def test_turn_audio_transcribes_to_what_was_said(settings: Settings, pipeline) -> None:  # type: ignore[no-untyped-def]
    recording = audio.load(POCKETSPHINX_DATA / "cards" / "005.wav")
    events = _feed(
        TurnDetector(settings.vad), np.concatenate([_silence(0.5), recording, _silence(1)])
    )
    end = next(e for e in events if e.kind == "end")
    from voxloop_bench.recordings import wer

    assert wer([(CARDS["005"], pipeline.transcribe(end.audio).text)]) <= 0.15


def test_silence_noise_and_clicks_are_not_turns(settings: Settings) -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, 5 * audio.SAMPLE_RATE).astype(np.float32)
    click = np.zeros(audio.SAMPLE_RATE, np.float32)
    click[8000:8160] = rng.uniform(-0.8, 0.8, 160)  # a 10 ms knock on the desk
    for stream in (_silence(5), noise, click):
        assert [e for e in _feed(TurnDetector(settings.vad), stream) if e.kind == "end"] == []


def test_a_long_monologue_is_cut_at_the_maximum_turn_length(settings: Settings) -> None:
    from voxloop.config import load_settings

    short = load_settings(vad={"max_turn_seconds": 3.0}).vad
    speech = np.concatenate(
        [
            audio.load(
                POCKETSPHINX_DATA / "librivox" / f"sense_and_sensibility_01_austen_64kb-{k}.wav"
            )
            for k in LIBRIVOX
        ]
    )
    ends = [e for e in _feed(TurnDetector(short), speech) if e.kind == "end"]
    assert len(ends) >= 3
    assert all(len(e.audio) <= 3.5 * audio.SAMPLE_RATE for e in ends)


def test_a_short_pause_is_announced_then_taken_back(settings: Settings) -> None:
    recording = audio.load(POCKETSPHINX_DATA / "cards" / "003.wav")
    speech_from, speech_to = _speech_span_ms(recording)
    words = recording[speech_from * 16 : speech_to * 16]  # the words alone, no silence
    pause = (settings.vad.speculate_ms + settings.vad.silence_ms) / 2000  # between the two
    events = _feed(
        TurnDetector(settings.vad),
        np.concatenate([_silence(0.5), words, _silence(pause), words, _silence(1.0)]),
    )
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-2:] == ["pause", "end"]
    assert "resume" in kinds and kinds.count("end") == 1, kinds
    pause_at = [e.at_ms for e in events if e.kind == "pause"][-1]
    end_at = events[-1].at_ms
    assert abs((end_at - pause_at) - (settings.vad.silence_ms - settings.vad.speculate_ms)) <= 64


def _sentence_with_a_pause(pause_seconds: float) -> tuple[np.ndarray, int]:
    """A real read sentence, silence, more of it; and where the second part starts (ms)."""
    first = audio.load(
        POCKETSPHINX_DATA / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav"
    )
    second = audio.load(POCKETSPHINX_DATA / "cards" / "001.wav")
    parts = [_silence(0.5), first, _silence(pause_seconds), second, _silence(2.5)]
    rest_at = sum(len(p) for p in parts[:3]) * 1000 // audio.SAMPLE_RATE
    return np.concatenate(parts), rest_at


def test_a_judge_that_hears_an_unfinished_sentence_keeps_the_turn_open(
    settings: Settings,
) -> None:
    vad = settings.vad.model_copy(update={"end_of_turn": "smart_turn"})
    stream, rest_at = _sentence_with_a_pause(0.9)  # longer than the fixed 500 ms window
    asked: list[int] = []

    def unfinished_until_the_end(utterance: np.ndarray) -> bool:  # a fake judge: the logic
        asked.append(len(utterance))
        return len(asked) > 1

    ends = [
        e for e in _feed(TurnDetector(vad, unfinished_until_the_end), stream) if e.kind == "end"
    ]
    fixed = [e for e in _feed(TurnDetector(settings.vad), stream) if e.kind == "end"]
    assert len(fixed) == 2 and fixed[0].at_ms < rest_at  # the fixed window cuts at the pause
    assert len(ends) == 1 and len(asked) == 2  # asked at the pause and at the end
    frame_ms = 32
    assert abs(ends[0].silence_ms - vad.turn_finished_ms) <= frame_ms  # ended once finished


# Allison Smith (Asterisk's prompts): "There is currently one other participant in the
# conference."; "in the conference" starts 2.22 s in (word times from Whisper base).
ONLY_ONE = "/usr/share/asterisk/sounds/en_US_f_Allison/confbridge-only-one.g722"
ONLY_ONE_PHRASE_SECONDS = 2.22


def test_the_smart_turn_model_hears_whether_a_real_sentence_is_finished(
    settings: Settings,
) -> None:
    from voxloop.turn_end import smart_turn

    sentence = load_clip(ONLY_ONE)  # cut half way, it stops mid-phrase
    finished = smart_turn().finished(np.concatenate([sentence, _silence(0.2)]))
    cut = sentence[: len(sentence) // 2]
    unfinished = smart_turn().finished(np.concatenate([cut, _silence(0.2)]))
    assert finished > settings.vad.turn_threshold > unfinished, (finished, unfinished)


def test_a_sentence_paused_in_the_middle_is_one_turn_when_its_words_are_read(
    settings: Settings,
) -> None:
    from voxloop.stt import get_transcriber
    from voxloop.turn_end import judge_of

    vad = settings.vad.model_copy(update={"end_of_turn": "words"})
    sentence = load_clip(ONLY_ONE)
    phrase = round(ONLY_ONE_PHRASE_SECONDS * audio.SAMPLE_RATE)
    pause = 0.9  # a person thinking: longer than the fixed 500 ms window
    stream = np.concatenate(
        [_silence(0.5), sentence[:phrase], _silence(pause), sentence[phrase:], _silence(2.5)]
    )
    moonshine = get_transcriber(settings, "moonshine")
    heard: list[str] = []

    def transcribe(utterance: np.ndarray) -> str:  # as the live transcript would have it
        heard.append(moonshine.transcribe(utterance).text)
        return heard[-1]

    ends = [
        e
        for e in _feed(TurnDetector(vad, judge_of(settings, vad, transcribe)), stream)
        if e.kind == "end"
    ]
    fixed = [e for e in _feed(TurnDetector(settings.vad), stream) if e.kind == "end"]
    assert len(fixed) == 2  # the fixed window cuts the sentence at the pause
    assert len(ends) == 1, heard  # read as unfinished at the pause, finished at the end
    frame_ms = 32
    assert ends[0].silence_ms <= vad.turn_finished_ms + frame_ms, heard  # ended without waiting


def test_the_sentence_end_reader_tells_whole_questions_from_half_ones(
    settings: Settings,
) -> None:
    from voxloop.assets import gguf_path
    from voxloop.turn_end import sentence_end
    from voxloop_bench import data_file

    vad = settings.vad
    reader = sentence_end(gguf_path(vad.words_model, settings.cache_dir), vad.words_threads)
    questions = json.loads(data_file("answers/questions.json").read_text())["questions"]
    held_out = [q["question"] for q in questions if q["split"] == "heldout"]
    halves = [" ".join(q.split()[: max(2, len(q.split()) // 2)]) for q in held_out]
    whole_ended = [q for q in held_out if reader.finished(q) >= vad.words_threshold]
    half_ended = [h for h in halves if reader.finished(h) >= vad.words_threshold]
    # Measured: 57 of 60 whole questions read as finished, 0 of 60 halves.
    assert len(whole_ended) >= 0.85 * len(held_out), set(held_out) - set(whole_ended)
    assert len(half_ended) <= 0.05 * len(halves), half_ended
    assert reader.finished("") == 1.0  # no words: nothing to wait for
    # Read as the live transcript grows (the words before stay evaluated) or afresh: the same.
    growing = [reader.finished(halves[0]), reader.finished(held_out[0])][-1]
    reader.finished("an unrelated sentence")
    assert abs(growing - reader.finished(held_out[0])) < 0.02


def test_a_request_a_skill_carries_out_reads_as_finished_and_its_start_does_not(
    settings: Settings,
) -> None:
    """Commands read as sentences that may go on ("set a timer for five minutes ... please"):
    a request a skill would carry out as it stands is finished though the reader doubts it."""
    from voxloop.assets import gguf_path
    from voxloop.turn_end import said_all, sentence_end
    from voxloop_bench import data_file

    vad = settings.vad
    reader = sentence_end(gguf_path(vad.words_model, settings.cache_dir), vad.words_threads)
    # The revision sets: written as held-out sets, the first of them the one this rule was
    # checked on; not the bench's current held-out set, which no test may look at.
    phrasings = json.loads(data_file("skills/phrasings.json").read_text())["revision"]
    requests = [p["text"] for said in phrasings.values() for p in said]
    unread = [t for t in requests if reader.finished(t) < vad.words_threshold]
    finished = [t for t in requests if said_all(reader, t, vad, None)]
    # Measured: the reader alone finishes 290 of these 345, with skills.whole_request 342.
    assert unread, "the reader reads every request as finished: nothing left to test"
    assert len(finished) >= 0.97 * len(requests), set(requests) - set(finished)
    for start in ("set a timer for", "what is 17 times", "how many centimetres in"):
        assert not said_all(reader, start, vad, None), start


def test_a_missing_sentence_end_model_says_what_to_do(tmp_path: Path) -> None:
    from voxloop.errors import ModelUnavailable
    from voxloop.turn_end import SentenceEnd

    broken = tmp_path / "reader.gguf"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelUnavailable, match=r"vad\.end_of_turn"):
        SentenceEnd(broken, threads=1)


def test_the_turns_bench_reads_conversational_turns_on_two_disjoint_splits(
    settings: Settings,
) -> None:
    from voxloop_bench import data_file
    from voxloop_bench.end_of_turn import REPLIES, _replies

    data = json.loads(data_file(REPLIES).read_text())
    splits = {split: {row["text"] for row in data[split]} for split in ("tuning", "heldout")}
    assert not splits["tuning"] & splits["heldout"]
    report = _replies(settings)
    for split, texts in splits.items():
        unfinished = report[split]["unfinished"]
        assert set(unfinished) <= texts
        assert report[split]["all"] == round(1 - len(unfinished) / len(texts), 3)
    # A whole question reads as finished; a bare "Why?" as the start of a longer one.
    assert "What about Italy?" not in report["tuning"]["unfinished"]
    assert "Why?" in report["tuning"]["unfinished"]
