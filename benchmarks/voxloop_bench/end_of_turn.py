"""`voxloop bench turns`: does a turn end when the person has finished, and only then?

Utterances are built from the real recordings of `voxloop bench stt` (benchmarks/stt/clips.json,
those of at least MIN_WORDS words, its tuning and held-out speakers): each complete, and each cut
at its widest gap between two words of one sentence (word times from Whisper base) with a pause of
300-900 ms inserted before the rest, as people pause to think. Each is fed frame by frame to the
turn detector, with the fixed silence window, with the Smart Turn model (the voice) and with the
sentence-end reader (the words of Moonshine's transcript so far); reported: false cut-offs (the
turn ended at the mid-sentence pause), and how long after the end of speech the turn ended (a
model that hears a finished sentence as unfinished waits `turn_wait_ms`). First, text only: the
share of conversational turns that are not whole questions (benchmarks/turns/replies.json: short
replies, follow-ups, statements, commands) that the sentence-end reader reads as finished.
"""

from __future__ import annotations

import json
import os
import statistics
from typing import Any

import numpy as np

from voxloop import audio
from voxloop.config import Settings
from voxloop.turn_end import SENTENCE_ENDS
from voxloop.vad import FRAME_SAMPLES, TurnDetector
from voxloop_bench import _percentile, data_file, progress, suite
from voxloop_bench.speech_to_text import CLIPS, load_clip

REPLIES = "turns/replies.json"  # conversational turns that are not whole questions
REPLIES_ONLY_ENV = "VOXLOOP_BENCH_TURNS_REPLIES_ONLY"  # "1": the replies part alone (text only)
MIN_WORDS = 7  # enough words to cut a sentence in two phrases
MIN_SIDE_WORDS = 3  # words kept on either side of the cut
MODES = ("silence", "smart_turn", "words")  # vad.end_of_turn
PAUSES_MS = (300, 400, 500, 600, 700, 800, 900)  # inserted pauses, chosen per clip
LEAD_SECONDS = 0.5
TRAIL_SECONDS = 2.5  # silence after the utterance: longer than any end-of-turn wait


@suite("turns")
def turns(settings: Settings) -> dict[str, Any]:
    """False cut-offs and end delays, fixed window vs the end-of-turn models, on both splits."""
    report: dict[str, Any] = {"replies_read_as_finished": _replies(settings)}
    if os.environ.get(REPLIES_ONLY_ENV) == "1":
        return report
    utterances = _utterances(settings)
    report["utterances"] = len(utterances)
    for mode in MODES:
        vad = settings.vad.model_copy(update={"end_of_turn": mode})
        results = [
            _run(settings, vad, u) for u in progress(utterances, f"turns {mode}", "utterance")
        ]
        report[mode] = {
            split: _summary([r for r in results if split in ("all", r["split"])])
            for split in ("all", "tuning", "held-out")
        }
        report[mode]["results"] = results
    return report


def _replies(settings: Settings) -> dict[str, Any]:
    """What the sentence-end reader makes of whole conversational turns that are not whole
    questions ("Yes.", "Why?", "My name is Ada.", "Tell me more."): the share read as finished,
    per split and kind (the rest would wait `turn_wait_ms`); text only, as written."""
    from voxloop.turn_end import said_all, words_reader

    vad = settings.vad.model_copy(update={"end_of_turn": "words"})
    reader, timezone = words_reader(settings, vad), settings.skills.timezone
    data = json.loads(data_file(REPLIES).read_text())
    report: dict[str, Any] = {}
    for split in ("tuning", "heldout"):
        rows = [
            {**row, "finished": said_all(reader, row["text"], vad, timezone)} for row in data[split]
        ]
        kinds = sorted({row["kind"] for row in rows})
        report[split] = {
            "all": _share(rows, "finished"),
            **{kind: _share([r for r in rows if r["kind"] == kind], "finished") for kind in kinds},
            "unfinished": [row["text"] for row in rows if not row["finished"]],
        }
    return report


def _utterances(settings: Settings) -> list[dict[str, Any]]:
    """Each long real clip, complete and cut at a phrase boundary with a pause."""
    from faster_whisper import WhisperModel

    from voxloop.assets import whisper_dir

    model = WhisperModel(str(whisper_dir("base", settings.cache_dir)), device="cpu")
    clips = json.loads(data_file(CLIPS).read_text())["clips"]
    utterances = []
    for index, clip in enumerate(c for c in clips if _usable(c)):
        samples = load_clip(clip["path"])
        segments, _ = model.transcribe(samples, language="en", word_timestamps=True)
        words = [w for segment in segments for w in segment.words or []]
        cut = _phrase_boundary(words)
        base = {"id": clip["id"], "split": clip["split"], "speaker": clip["speaker"]}
        utterances.append({**base, "kind": "complete", "parts": [samples]})
        if cut is not None:
            pause = PAUSES_MS[index % len(PAUSES_MS)]
            at = round(cut * audio.SAMPLE_RATE)
            gap = np.zeros(pause * audio.SAMPLE_RATE // 1000, np.float32)
            parts = [samples[:at], gap, samples[at:]]
            utterances.append({**base, "kind": "cut", "pause_ms": pause, "parts": parts})
    return utterances


def _usable(clip: dict[str, Any]) -> bool:
    return not clip.get("excluded") and len(clip["transcript"].split()) >= MIN_WORDS


def _phrase_boundary(words: list[Any]) -> float | None:
    """The time (s) in the widest gap between words inside a sentence (not after its full
    stop: there the speaker may well have finished), with MIN_SIDE_WORDS on either side."""
    gaps = [
        (words[i + 1].start - words[i].end, (words[i].end + words[i + 1].start) / 2)
        for i in range(MIN_SIDE_WORDS - 1, len(words) - MIN_SIDE_WORDS)
        if not words[i].word.strip().endswith(SENTENCE_ENDS)
    ]
    return max(gaps)[1] if gaps else None


def _run(settings: Settings, vad: Any, utterance: dict[str, Any]) -> dict[str, Any]:
    """Feed one utterance frame by frame; where its turn(s) ended."""
    from voxloop.stt import get_transcriber
    from voxloop.turn_end import judge_of

    moonshine = get_transcriber(settings, "moonshine")  # the live transcript's engine

    lead = np.zeros(round(LEAD_SECONDS * audio.SAMPLE_RATE), np.float32)
    trail = np.zeros(round(TRAIL_SECONDS * audio.SAMPLE_RATE), np.float32)
    parts = utterance["parts"]
    samples = np.concatenate([lead, *parts, trail])
    rest_starts_ms = (len(lead) + sum(len(p) for p in parts[:-1])) * 1000 / audio.SAMPLE_RATE
    detector = TurnDetector(vad, judge_of(settings, vad, lambda a: moonshine.transcribe(a).text))
    ends = [
        event
        for start in range(0, len(samples), FRAME_SAMPLES)
        for event in detector.feed(samples[start : start + FRAME_SAMPLES])
        if event.kind == "end"
    ]
    # Ended inside the utterance: at the inserted pause, or at a pause of the recording itself.
    cut_off = any(e.at_ms < rest_starts_ms for e in ends) if len(parts) > 1 else len(ends) > 1
    return {
        "id": utterance["id"], "split": utterance["split"], "kind": utterance["kind"],
        "pause_ms": utterance.get("pause_ms"), "cut_off": cut_off, "turns": len(ends),
        "end_delay_ms": ends[-1].silence_ms if ends else None,  # silence before the last end
    }  # fmt: skip


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    cuts = [r for r in results if r["kind"] == "cut"]
    whole = [r for r in results if r["kind"] == "complete"]
    delays = [r["end_delay_ms"] for r in results if r["end_delay_ms"] is not None]
    return {
        "cut_utterances": len(cuts),
        "false_cut_offs": round(sum(r["cut_off"] for r in cuts) / max(len(cuts), 1), 3),
        "complete_utterances_split": round(
            sum(r["cut_off"] for r in whole) / max(len(whole), 1), 3
        ),
        "never_ended": sum(r["end_delay_ms"] is None for r in results),
        "end_delay_ms": {
            "p50": round(statistics.median(delays)) if delays else None,
            "p95": round(_percentile(delays, 0.95)) if delays else None,
        },
    }


def _share(rows: list[dict[str, Any]], key: str) -> float:
    return round(sum(bool(r[key]) for r in rows) / max(len(rows), 1), 3)
