"""Speech to text on the broad set of `voxloop bench stt`: a few real clips of every source,
the recommended engine within the WER bound, and each engine option of that comparison."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from resources import require_package
from voxloop import audio
from voxloop.config import Settings
from voxloop.stt import get_transcriber
from voxloop.stt.checked import unknown_words, vocabulary
from voxloop.stt.whisper import WhisperTranscriber
from voxloop_bench import data_file
from voxloop_bench import speech_to_text as bench_stt
from voxloop_bench.recordings import wer

RECOMMENDED = "whisper"  # tiny.en: the recommendation of docs/benchmarks.md (`voxloop bench stt`)
MAX_WER = 0.10  # issue 11: at most 10% on every source
CLIPS_PER_SOURCE = 2
MIN_WORDS = 4  # shorter clips swing the WER by a third per word
MAX_WORDS = 30  # longer ones (a 44 s reading) cost the test time, not coverage
ENGINE_MAX_WER = 0.15  # each option, on the same few clips (a smoke bound, not the target)
PROMPTED_MAX_WER = 0.35
NOISE_PACKAGE = "fillets-ng-data"  # Fish Fillets' sound effects (benchmarks/stt/clips.json)


@pytest.fixture(scope="module")
def clips() -> list[dict[str, Any]]:
    """The first few confirmed clips of every source, with their audio."""
    data = json.loads(data_file(bench_stt.CLIPS).read_text(encoding="utf-8"))
    chosen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for clip in data["clips"]:
        words = len(clip["transcript"].split())
        if clip.get("excluded") or not MIN_WORDS <= words <= MAX_WORDS:
            continue
        if len(chosen[clip["source"]]) < CLIPS_PER_SOURCE:
            chosen[clip["source"]].append(clip)
    picked = [clip for source_clips in chosen.values() for clip in source_clips]
    for clip in picked:  # each source but Python packages' is the Debian package of its name
        require_package(clip["source"], _installed(clip["path"]))
    return [{**clip, "samples": bench_stt.load_clip(clip["path"])} for clip in picked]


def _installed(path: str) -> bool:
    """Whether a clip's file is there (`python:` files come with the Python packages)."""
    if path.startswith("python:"):
        return True
    return Path(path.removeprefix("zip:").partition("!")[0]).is_file()


def _wer_by_source(transcribe: Any, clips: list[dict[str, Any]]) -> dict[str, float]:
    pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for clip in clips:
        pairs[clip["source"]].append((clip["transcript"], transcribe(clip)))
    return {source: wer(source_pairs) for source, source_pairs in pairs.items()}


def test_recommended_engine_within_bound_on_every_source(
    settings: Settings, clips: list[dict[str, Any]]
) -> None:
    transcriber = get_transcriber(settings, RECOMMENDED)
    by_source = _wer_by_source(lambda clip: transcriber.transcribe(clip["samples"]).text, clips)
    assert len(by_source) >= 3, by_source
    assert all(rate <= MAX_WER for rate in by_source.values()), by_source


@pytest.mark.parametrize("engine", ["checked", "pick"])
def test_combined_engines_transcribe_real_speech(
    engine: str, settings: Settings, clips: list[dict[str, Any]]
) -> None:
    transcriber = get_transcriber(settings, engine)
    pairs = [(c["transcript"], transcriber.transcribe(c["samples"]).text) for c in clips]
    assert wer(pairs) <= ENGINE_MAX_WER
    assert transcriber.stream() is not None  # live partials: Moonshine's streaming decoder


def test_whisper_base_in_english_and_beam_search(
    settings: Settings, clips: list[dict[str, Any]]
) -> None:
    for changes in ({"whisper_model": "base", "language": "en"}, {"beam_size": 5}):
        options = settings.model_copy(update={"stt": settings.stt.model_copy(update=changes)})
        transcriber = get_transcriber(options, "whisper")
        pairs = [(c["transcript"], transcriber.transcribe(c["samples"]).text) for c in clips]
        assert wer(pairs) <= ENGINE_MAX_WER, changes


def test_vocabulary_check_finds_made_up_words(settings: Settings) -> None:
    from voxloop import assets

    known = vocabulary(assets.whisper_dir(settings.stt.whisper_model, settings.cache_dir))
    assert unknown_words("He was not an ill disposed young man.", known) == 0
    assert unknown_words("He was not an ill dispozzled yung man.", known) == 2


def test_whisper_reports_confidence_and_takes_a_prompt(
    settings: Settings, clips: list[dict[str, Any]]
) -> None:
    transcriber = get_transcriber(settings, "whisper")
    assert isinstance(transcriber, WhisperTranscriber)
    clip = next(c for c in clips if c.get("context"))
    plain = transcriber.transcribe(clip["samples"])
    prompted = transcriber.transcribe(clip["samples"], prompt=clip["context"])
    assert plain.logprob is not None and plain.logprob < 0
    # The prompt steers, it does not replace hearing (it may cost a word: docs/benchmarks.md).
    assert wer([(clip["transcript"], prompted.text)]) <= PROMPTED_MAX_WER
    silence = transcriber.transcribe(np.zeros(audio.SAMPLE_RATE, np.float32), prompt="hello")
    assert "hello" not in silence.text.lower()  # the prompt is context, never the transcript


def test_noise_is_mixed_at_the_asked_level(clips: list[dict[str, Any]]) -> None:
    data = json.loads(data_file(bench_stt.CLIPS).read_text(encoding="utf-8"))
    require_package(NOISE_PACKAGE, Path(data["noise"]["paths"][0]).is_file())
    noise = bench_stt.load_clip(data["noise"]["paths"][0])
    speech = clips[0]["samples"]
    mixed = bench_stt.mix(speech, noise, 10.0, offset=0)
    added = mixed - speech
    ratio_db = 10 * np.log10(bench_stt._active_power(speech) / bench_stt._active_power(added))
    assert abs(ratio_db - 10.0) < 1.0
    assert Path(data["noise"]["paths"][0]).is_file()


def test_pipeline_gives_the_conversation_to_whisper(
    settings: Settings, clips: list[dict[str, Any]]
) -> None:
    from voxloop.llm import Message
    from voxloop.pipeline import Pipeline
    from voxloop.turns import TurnRequest

    changes = {"engine": "whisper", "conversation_prompt": True}
    options = settings.model_copy(update={"stt": settings.stt.model_copy(update=changes)})
    clip = next(c for c in clips if c.get("context"))
    history = [
        Message(role="user", content="Read me the next line."),
        Message(role="assistant", content=clip["context"]),
    ]
    pipeline = Pipeline(options)
    request = TurnRequest(audio=clip["samples"], history=history)
    prompt = pipeline._conversation_prompt(request)
    assert prompt is not None and clip["context"] in prompt
    transcript = pipeline.transcribe(clip["samples"], prompt=prompt)
    assert wer([(clip["transcript"], transcript.text)]) <= PROMPTED_MAX_WER
    unprompted = settings.model_copy(
        update={"stt": settings.stt.model_copy(update={"conversation_prompt": False})}
    )
    assert Pipeline(unprompted)._conversation_prompt(request) is None  # it can be turned off


def test_whisper_encodes_a_short_window_for_a_short_question(
    settings: Settings, clips: list[dict[str, Any]]
) -> None:
    short = [c for c in clips if len(c["samples"]) < 8 * audio.SAMPLE_RATE]
    encoded: dict[float, list[int]] = {}
    for window in (10.0, 30.0):
        changes = {"whisper_window_seconds": window}
        options = settings.model_copy(update={"stt": settings.stt.model_copy(update=changes)})
        transcriber = get_transcriber(options, "whisper")
        assert isinstance(transcriber, WhisperTranscriber)
        model, frames = transcriber.model, encoded.setdefault(window, [])
        original = model.encode

        def counted(features: Any, original: Any = original, frames: list[int] = frames) -> Any:
            result = original(features)
            frames.append(int(result.shape[1]))  # encoder positions: two frames each
            return result

        model.encode = counted
        try:
            pairs = [(c["transcript"], transcriber.transcribe(c["samples"]).text) for c in short]
        finally:
            del model.encode
        assert wer(pairs) <= MAX_WER, (window, pairs)
    assert max(encoded[10.0]) <= 500 < min(encoded[30.0]) == 1500, encoded
