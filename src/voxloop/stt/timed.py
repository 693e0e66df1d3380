"""Transcripts with times: a recording cut at pauses by the voice activity detector, the way
long recordings are cut, and each stretch transcribed on its own, so that every engine's
transcript has segments with real start and end times; and those segments as subtitles."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from voxloop import vad
from voxloop.audio import MS_PER_SECOND, SAMPLE_RATE, SECONDS_PER_HOUR, SECONDS_PER_MINUTE
from voxloop.config import Settings
from voxloop.errors import NoSpeech
from voxloop.longform import Segment
from voxloop.stt import get_transcriber


@dataclass(frozen=True)
class TimedTranscript:
    """A recording's segments in order, the language spoken (ISO 639-1) and its length."""

    segments: tuple[Segment, ...]
    language: str
    duration: float

    @property
    def text(self) -> str:
        """The whole transcript."""
        return " ".join(segment.text for segment in self.segments)


def transcribe(
    samples: np.ndarray, settings: Settings, engine: str | None = None, language: str | None = None
) -> TimedTranscript:
    """Transcribe 16 kHz mono audio stretch by stretch; NoSpeech if no words were heard."""
    transcriber = get_transcriber(settings, engine, language)  # a bad name fails first
    segments, languages = [], []
    for start, end, speech in speech_pieces([samples], settings):
        heard = transcriber.transcribe(speech)
        if text := heard.text.strip():
            segments.append(Segment(start, end, text))
            languages.append(heard.language)
    if not segments:
        raise NoSpeech("No speech heard. Please speak closer to the microphone.")
    return TimedTranscript(tuple(segments), languages[0], len(samples) / SAMPLE_RATE)


def speech_pieces(
    blocks: Iterable[np.ndarray], settings: Settings
) -> Iterator[tuple[float, float, np.ndarray]]:
    """(start, end, audio) of each stretch of speech in 16 kHz audio given block by block, cut
    at pauses (`longform.pause_ms`) and at `longform.segment_max_seconds`."""
    longform = settings.longform
    turns = settings.vad.model_copy(
        update={
            "silence_ms": longform.pause_ms,
            "max_turn_seconds": longform.segment_max_seconds,
            "speculate_ms": 0,  # no 'pause' events: nothing is prepared ahead here
        }
    )
    detector = vad.TurnDetector(turns)
    fed = 0
    for block in blocks:
        fed += len(block)
        for event in detector.feed(block):
            if event.kind == "end" and event.audio is not None:
                yield _placed(event.at_ms / MS_PER_SECOND, event.audio)
    if detector.speaking:  # the recording ends mid-speech
        whole_frames = fed - fed % vad.FRAME_SAMPLES
        yield _placed(whole_frames / SAMPLE_RATE, np.concatenate(detector.utterance))


def _placed(end: float, speech: np.ndarray) -> tuple[float, float, np.ndarray]:
    start = max(0.0, end - len(speech) / SAMPLE_RATE)
    return round(start, 3), round(end, 3), speech


def srt(segments: Iterable[Segment]) -> str:
    """The segments as SubRip subtitles (numbered cues, times as 00:00:01,500)."""
    cues = (
        f"{number}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text}\n"
        for number, s in enumerate(segments, start=1)
    )
    return "\n".join(cues)


def vtt(segments: Iterable[Segment]) -> str:
    """The segments as WebVTT subtitles (times as 00:00:01.500)."""
    cues = (f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text}\n" for s in segments)
    return "\n".join(["WEBVTT\n", *cues])


def _clock(seconds: float, decimal_mark: str) -> str:
    """hours:minutes:seconds and milliseconds, as subtitle formats write a time."""
    ms = round(seconds * MS_PER_SECOND)
    whole, ms = divmod(ms, MS_PER_SECOND)
    hours, rest = divmod(whole, SECONDS_PER_HOUR)
    minutes, secs = divmod(rest, SECONDS_PER_MINUTE)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{ms:03d}"
