"""The page's microphone path, in a real Chromium: real recordings played as the fake microphone
come out of voxloop.js (browser processing, the capture worklet's resampling to 16 kHz) whole,
in place and intelligible to both speech engines. `voxloop bench stt`'s browser column is
measured through this same path (benchmarks/voxloop_bench/browser_microphone.py)."""

from __future__ import annotations

import json

from voxloop.config import Settings
from voxloop.stt import get_transcriber
from voxloop_bench import data_file
from voxloop_bench import speech_to_text as bench_stt
from voxloop_bench.browser_microphone import (
    MARGIN_SECONDS,
    MIN_LOUDNESS_CORRELATION,
    SAMPLE_RATE,
    capture,
    loudness_correlation,
)
from voxloop_bench.recordings import wer

CLIP_IDS = 3  # one reader, one IVR prompt, one synthetic-free command voice: three sources
MAX_WER = 0.2  # a smoke bound for a few clips (the bench's browser column has the figures)


def _clips() -> list[dict[str, object]]:
    data = json.loads(data_file(bench_stt.CLIPS).read_text(encoding="utf-8"))
    picked: dict[str, dict[str, object]] = {}
    for clip in data["clips"]:
        if not clip.get("excluded") and 5 <= len(clip["transcript"].split()) <= 20:
            picked.setdefault(clip["source"], clip)
    return list(picked.values())[:CLIP_IDS]


def test_the_page_sends_what_the_microphone_hears(settings: Settings) -> None:
    clips = _clips()
    played = [bench_stt.load_clip(str(clip["path"])) for clip in clips]
    heard = capture(played)
    margin = int(MARGIN_SECONDS * SAMPLE_RATE)
    for original, sent in zip(played, heard, strict=True):
        assert abs(len(sent) - (len(original) + 2 * margin)) <= margin  # whole, and in place
        # in place: capture() itself refuses a capture whose loudness does not follow the clip
        assert loudness_correlation(original, sent[margin:]) >= MIN_LOUDNESS_CORRELATION
        late = sent[margin + SAMPLE_RATE // 2 :]  # and a capture half a second late is told apart
        assert loudness_correlation(original, late) < MIN_LOUDNESS_CORRELATION
    for engine in ("moonshine", "whisper"):
        transcriber = get_transcriber(settings, engine)
        pairs = [
            (str(clip["transcript"]), transcriber.transcribe(sent).text)
            for clip, sent in zip(clips, heard, strict=True)
        ]
        assert wer(pairs) <= MAX_WER, (engine, pairs)
