"""Summaries of long recordings, scored (`voxloop bench summaries`, also the `quality` part of
`voxloop bench longform`).

Each recording of benchmarks/longform/recordings.json (stories, a lecture, a meeting, a recipe,
news and more, spoken by several voices and engines, and real LibriVox readings) is built once
into settings.cache_dir/bench-longform, transcribed and summarized by the real long-recording
path (longform.transcribe, then longform.summarize), and scored: the share of its key facts the
summary names, and the summary sentences whose content the transcript does not support.
VOXLOOP_BENCH_SUMMARIES_SPLIT (e.g. "held-out-3") runs the recordings of one split only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxloop.config import Settings
from voxloop.errors import VoxloopError
from voxloop.grounding import checked, normalized, unsupported
from voxloop_bench import _isolated, data_file, progress, suite

DATA = "longform/recordings.json"
AUDIO_FOLDER = "bench-longform"
AUDIO_SUFFIX = ".mp3"
PARAGRAPH_PAUSE_SECONDS = 1.2  # between paragraphs: a pause the segmenter cuts at
FLITE_PREFIX = "flite:"
FESTIVAL = "festival"
# held-out-2: written to judge the grounding check; held-out-3: to judge the defaults
SPLITS = ("tune", "held-out", "held-out-2", "held-out-3")
SPLIT_VARIABLE = "VOXLOOP_BENCH_SUMMARIES_SPLIT"


@dataclass(frozen=True)
class Fact:
    """A key fact of a recording, and the words that name it (any of them will do)."""

    fact: str
    any: tuple[str, ...]


@dataclass(frozen=True)
class EvalRecording:
    """A recording of the evaluation set: how it is built and what it says."""

    id: str
    split: str
    source: str
    facts: tuple[Fact, ...]
    voices: tuple[str, ...] = ()
    paragraphs: tuple[str, ...] = ()
    real_seconds: float = 0.0
    speed: float = 1.0  # of voxloop's voices (flite and festival speak at their own pace)


def evaluation_set(split: str | None = None) -> list[EvalRecording]:
    """The recordings of benchmarks/longform/recordings.json (of one split, if given)."""
    data = json.loads(data_file(DATA).read_text())
    recordings = [
        EvalRecording(
            id=item["id"],
            split=item["split"],
            source=item["source"],
            facts=tuple(Fact(f["fact"], tuple(f["any"])) for f in item["facts"]),
            voices=tuple(item.get("voices", ())),
            paragraphs=tuple(item.get("paragraphs", ())),
            real_seconds=float(item.get("real", {}).get("seconds", 0.0)),
            speed=float(item.get("speed", 1.0)),
        )
        for item in data["recordings"]
    ]
    return [r for r in recordings if split is None or r.split == split]


def build(recording: EvalRecording, settings: Settings) -> Path:
    """The recording's audio file in settings.cache_dir/bench-longform, built once."""
    from voxloop import audio
    from voxloop_bench import recordings

    out = settings.cache_dir / AUDIO_FOLDER / f"{recording.id}{AUDIO_SUFFIX}"
    if recording.real_seconds:
        return recordings.long_recording(out, recording.real_seconds)
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    pause = np.zeros(round(PARAGRAPH_PAUSE_SECONDS * audio.SAMPLE_RATE), np.float32)
    pieces: list[np.ndarray] = []
    for number, paragraph in enumerate(recording.paragraphs):
        voice = recording.voices[number % len(recording.voices)]
        pieces += [spoken(paragraph, voice, settings.cache_dir, recording.speed), pause]
    _write(np.concatenate(pieces), out)
    return out


def spoken(text: str, voice: str, cache_dir: Path, speed: float = 1.0) -> np.ndarray:
    """`text` spoken by `voice` as 16 kHz float32: a voxloop voice id, 'flite:<voice>' or
    'festival' (Debian's flite and festival, voices voxloop does not speak with)."""
    from voxloop import audio, tts

    if voice.startswith(FLITE_PREFIX) or voice == FESTIVAL:
        return _spoken_by_program(text, voice)
    chunks = tts.synthesize(text, voice, cache_dir=cache_dir, speed=speed)
    joined = audio.join_chunks(list(chunks))
    return audio.to_mono_16k(joined.pcm, joined.sample_rate)


def _spoken_by_program(text: str, voice: str) -> np.ndarray:
    from voxloop import audio

    program = "flite" if voice.startswith(FLITE_PREFIX) else "text2wave"
    if shutil.which(program) is None:
        raise VoxloopError(
            f"{program} is not installed: `apt-get install -y flite festival` (scripts/setup.sh "
            "installs them with --test)."
        )
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        if program == "flite":
            command = ["flite", "-voice", voice.removeprefix(FLITE_PREFIX), "-t", text, "-o"]
            subprocess.run([*command, str(wav)], check=True, capture_output=True)
        else:
            subprocess.run(
                ["text2wave", "-o", str(wav)], input=text.encode(), check=True, capture_output=True
            )
        return audio.load(wav)


def _write(samples: np.ndarray, out: Path) -> None:
    """Encode 16 kHz float32 audio to `out` (format by suffix), under a temporary name first:
    a cut-off file is no cache."""
    from voxloop import audio
    from voxloop_bench.recordings import _ffmpeg

    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        wav.write_bytes(audio.wav_bytes(audio.to_int16(samples), audio.SAMPLE_RATE))
        building = out.with_name(f"{out.stem}.building{out.suffix}")
        _ffmpeg(["-i", str(wav)], building)
    building.rename(out)


# Scoring


def names_fact(summary: str, fact: Fact) -> bool:
    """Whether `summary` names `fact`: one of its words at the start of a word of the summary."""
    text = normalized(summary)
    return any(re.search(rf"(?<![a-z0-9]){re.escape(normalized(w))}", text) for w in fact.any)


# The suite


@suite("summaries")
def summaries(settings: Settings) -> dict[str, Any]:
    """Every recording of the set transcribed and summarized in one fresh process; the share of
    key facts each summary names, per recording and per split, and its unsupported sentences."""
    split = os.environ.get(SPLIT_VARIABLE) or None
    if split is not None and split not in SPLITS:
        raise VoxloopError(f"{SPLIT_VARIABLE} takes one of {', '.join(SPLITS)}; got {split!r}.")
    runs = _isolated(_summarize_all, settings, split)
    return {"settings": _settings_used(settings), **score(runs)}


def _summarize_all(settings: Settings, split: str | None) -> list[dict[str, Any]]:
    from voxloop import longform

    runs = []
    dropped = _DroppedSentences()
    logging.getLogger(longform.__name__).addHandler(dropped)
    logging.getLogger(longform.__name__).setLevel(logging.INFO)
    for recording in progress(evaluation_set(split), "summaries", "recording"):
        path = build(recording, settings)
        started = time.perf_counter()
        transcript = longform.transcribe(path, settings)
        transcribed = time.perf_counter()
        dropped.sentences = []
        summary = longform.summarize(transcript, settings)
        runs.append({
            "dropped": dropped.sentences,
            "id": recording.id,
            "minutes": round(transcript.duration / 60, 2),
            "transcript": transcript.text,
            "summary": summary,
            "transcription_seconds": round(transcribed - started, 1),
            "summary_seconds": round(time.perf_counter() - transcribed, 1),
        })  # fmt: skip
    return runs


class _DroppedSentences(logging.Handler):
    """Collects the summary sentences longform dropped as unsupported (it logs each)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.sentences: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.sentences += [str(arg) for arg in record.args or ()]


def score(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Facts named and unsupported sentences of each run, and the totals of each split."""
    by_id = {recording.id: recording for recording in evaluation_set()}
    scored = [_scored(by_id[run["id"]], run) for run in runs]
    splits = {}
    for split in SPLITS:
        part = [s for s in scored if s["split"] == split]
        named = sum(s["facts_named"] for s in part)
        total = sum(s["facts"] for s in part)
        splits[split] = {
            "recordings": len(part),
            "facts_named": named,
            "facts": total,
            "share_named": round(named / total, 3) if total else None,
            "worst_recording_share": min((s["share_named"] for s in part), default=None),
            "unsupported_sentences": sum(len(s["unsupported"]) for s in part),
            "sentences_with_absent_words": sum(len(s["with_absent_words"]) for s in part),
            "dropped_sentences": sum(len(s["dropped"]) for s in part),
        }
    return {"splits": splits, "recordings": scored}


def _scored(recording: EvalRecording, run: dict[str, Any]) -> dict[str, Any]:
    named = [names_fact(run["summary"], fact) for fact in recording.facts]
    in_transcript = [names_fact(run["transcript"], fact) for fact in recording.facts]
    return {
        "id": recording.id,
        "split": recording.split,
        "source": recording.source,
        "voices": list(recording.voices) or ["real"],
        "minutes": run["minutes"],
        "facts": len(named),
        "facts_named": sum(named),
        "share_named": round(sum(named) / len(named), 3),
        "facts_in_transcript": sum(in_transcript),  # the most a summary could name
        "missed": [f.fact for f, hit in zip(recording.facts, named, strict=True) if not hit],
        "unsupported": [asdict(u) for u in unsupported(run["summary"], run["transcript"])],
        # Stricter than the check longform applies: any content word the transcript lacks.
        "with_absent_words": [
            asdict(c) for c in checked(run["summary"], run["transcript"]) if c.absent
        ],
        "dropped": run.get("dropped", []),
        "summary": run["summary"],
        "summary_words": len(run["summary"].split()),
        "transcript": run["transcript"],
        "transcription_seconds": run["transcription_seconds"],
        "summary_seconds": run["summary_seconds"],
    }


def _settings_used(settings: Settings) -> dict[str, Any]:
    return {"llm_model": settings.llm.model, "longform": settings.longform.model_dump()}
