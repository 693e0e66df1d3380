"""The HTTP API as its clients expect it, against a running `voxloop serve`: chat completions
read by the official `openai` client (usage, finish reasons, temperature, top_p and stop
honoured), streams that proxies do not buffer and that keep-alive pings hold open, and
transcripts with timed segments as `verbose_json`, SubRip and WebVTT."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import soundfile

import servers
from servers import running_server
from voxloop import assets, audio
from voxloop.config import Settings, load_settings
from voxloop.llm import Message, Sampling, Usage, get_chat_model
from voxloop_bench.recordings import Recording, wer

KEEP_ALIVE_SECONDS = 1  # this server's ping interval, short so a test sees a ping soon
COUNTING = "Count from 1 to 10, separated by commas."
POEM = "Write a short poem about the sea."
PAUSE_SECONDS = 1.5  # silence between the recordings joined into one file
MAX_WER = 0.25
WORKER_FREED_SECONDS = 30  # a client that left has freed its worker by then
SRT_TIME = r"\d\d:\d\d:\d\d,\d\d\d"
VTT_TIME = r"\d\d:\d\d:\d\d\.\d\d\d"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `voxloop serve` on loopback that pings its event streams every second."""
    data_dir = tmp_path_factory.mktemp("openai-types")
    env = {"VOXLOOP_SERVER__KEEP_ALIVE_SECONDS": str(KEEP_ALIVE_SECONDS)}
    with running_server(data_dir, **env) as url:
        yield url.rstrip("/")


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    """The official OpenAI client, pointed at voxloop."""
    return openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed", max_retries=0)


def _ask(client: openai.OpenAI, question: str, **options: Any) -> Any:
    messages: Any = [{"role": "user", "content": question}]
    return client.chat.completions.create(model="voxloop", messages=messages, **options)


# ---- chat completions ----------------------------------------------------------------------


def test_max_tokens_cuts_the_reply_with_finish_reason_length(client: openai.OpenAI) -> None:
    reply = _ask(client, COUNTING, max_tokens=3)
    assert reply.choices[0].finish_reason == "length"
    usage = reply.usage
    assert usage is not None and usage.completion_tokens == 3
    assert usage.prompt_tokens > len(COUNTING.split()), "the prompt is at least its words"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_whole_and_streamed_replies_agree_at_temperature_zero(client: openai.OpenAI) -> None:
    whole = _ask(client, POEM, temperature=0, max_tokens=40)
    again = _ask(client, POEM, temperature=0, max_tokens=40)
    chunks = list(
        _ask(
            client, POEM, temperature=0, max_tokens=40, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    text = whole.choices[0].message.content
    assert text and again.choices[0].message.content == text, "greedy: the same reply twice"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    assert finish == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage is not None, "the usage chunk is last"
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert whole.usage.completion_tokens >= len(text.split()) / 2, whole.usage


def test_a_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(_ask(client, "Say hello.", stream=True))
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stop_ends_the_reply_before_the_stop_string(client: openai.OpenAI) -> None:
    reply = _ask(client, COUNTING, temperature=0, stop=["5"])
    text = reply.choices[0].message.content or ""
    assert "4" in text and "5" not in text and "6" not in text, text
    assert reply.choices[0].finish_reason == "stop"


def test_top_p_narrows_sampling_to_the_likeliest_token(client: openai.OpenAI) -> None:
    # At temperature 1.5 two poems differ; with top_p tiny only the likeliest token is left.
    # Another question before each keeps llama.cpp from reusing the whole prompt, whose logits
    # then differ a little and may pick the other of two near-equal words.
    replies = []
    for _ in range(2):
        _ask(client, "Say hello.", max_tokens=1)
        reply = _ask(client, POEM, temperature=1.5, top_p=0.01, max_tokens=30)
        replies.append(reply.choices[0].message.content)
    assert replies[0] == replies[1]


# ---- streams: no buffering, keep-alive pings -----------------------------------------------


def _assert_unbuffered(response: httpx.Response) -> None:
    assert response.status_code == 200, response.read()
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"


STREAMED = {
    "chat": ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "Hi."}],
                                               "stream": True, "max_tokens": 5}}),
    "turn": ("/v1/voxloop/turn", {"data": {"text": "What is two plus two?"}}),
    "speech": ("/v1/audio/speech", {"json": {"input": "Hello there.", "response_format": "pcm"}}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(STREAMED))
def test_streamed_responses_are_not_buffered_by_proxies(server: str, name: str) -> None:
    path, request = STREAMED[name]
    with httpx.stream("POST", f"{server}{path}", timeout=120, **request) as response:
        _assert_unbuffered(response)
        assert response.read()


def test_alert_stream_is_unbuffered_and_pinged_while_quiet(server: str) -> None:
    params = {"session": "quiet"}
    with httpx.stream("GET", f"{server}/v1/voxloop/events", params=params, timeout=30) as response:
        _assert_unbuffered(response)
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == ": listening"
        # Nothing happens in this session: the next line can only be a keep-alive comment.
        assert next(line for line in lines if line).startswith(": ping")


def test_a_client_that_leaves_a_stream_frees_its_worker(server: str) -> None:
    story = {"role": "user", "content": "Tell me a long story about a dragon and a knight."}
    body = {"messages": [story], "stream": True, "max_tokens": 1000}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=60) as response:
        assert next(line for line in response.iter_lines() if line.startswith("data:"))
    # Gone after one chunk: its worker slot comes free (a leaked slot would stay taken).
    deadline = time.monotonic() + WORKER_FREED_SECONDS
    while _working(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _working(server) == 0


def _working(server: str) -> int:
    return int(httpx.get(f"{server}/health", timeout=10).json()["working"])


def test_the_openai_backend_passes_sampling_on_and_reports_the_ending(settings: Settings) -> None:
    model_path = assets.gguf_path("qwen2.5-0.5b", settings.cache_dir)
    with servers.llama_server(model_path) as remote:
        chat = load_settings(
            llm={"backend": "openai", "base_url": remote.base_url, "model": remote.alias}
        )
        messages: list[Message] = [{"role": "user", "content": COUNTING}]
        cut = Usage()
        assert list(get_chat_model(chat).stream(messages, max_tokens=3, usage=cut))
        stopped = Usage()
        sampling = Sampling(temperature=0.0, stop=("5",))
        pieces = get_chat_model(chat).stream(
            messages, max_tokens=100, sampling=sampling, usage=stopped
        )
        text = "".join(pieces)
    assert cut.finish_reason == "length"
    assert "4" in text and "5" not in text and stopped.finish_reason == "stop", text


# ---- transcripts with times ----------------------------------------------------------------


@pytest.fixture(scope="module")
def joined(
    real_recordings: list[Recording], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[tuple[float, float, str]]]:
    """Three real recordings in one WAV, with pauses between; and where each one is."""
    chosen = [r for r in real_recordings if r.kind == "read"][:3]
    pause = np.zeros(int(PAUSE_SECONDS * audio.SAMPLE_RATE), np.float32)
    parts, places, at = [], [], 0.0
    for recording in chosen:
        samples = audio.load(recording.path)
        seconds = len(samples) / audio.SAMPLE_RATE
        parts += [samples, pause]
        places.append((at, at + seconds, recording.text))
        at += seconds + PAUSE_SECONDS
    path = tmp_path_factory.mktemp("joined") / "three.wav"
    soundfile.write(path, np.concatenate(parts), audio.SAMPLE_RATE)
    return path, places


def _transcribe(server: str, path: Path, response_format: str) -> httpx.Response:
    files = {"file": (path.name, path.read_bytes(), "audio/wav")}
    data = {"model": "whisper-1", "response_format": response_format}
    response = httpx.post(f"{server}/v1/audio/transcriptions", files=files, data=data, timeout=120)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def verbose(server: str, joined: tuple[Path, list[tuple[float, float, str]]]) -> dict[str, Any]:
    """The joined recordings' transcript as `verbose_json`."""
    return dict(_transcribe(server, joined[0], "verbose_json").json())


def test_verbose_json_has_segments_at_the_times_of_the_words(
    verbose: dict[str, Any], joined: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    _path, places = joined
    segments = verbose["segments"]
    assert len(segments) >= len(places)
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts) and all(s["start"] < s["end"] for s in segments)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(segments))
    assert segments[-1]["end"] <= verbose["duration"] + 0.05
    # Each recording's words are in the segments that lie within its stretch of the file.
    for start, end, text in places:
        heard = " ".join(s["text"] for s in segments if start <= (s["start"] + s["end"]) / 2 <= end)
        assert wer([(text, heard)]) <= MAX_WER, (text, heard)
    assert verbose["text"] == " ".join(s["text"] for s in segments)
    assert verbose["language"] == "english"


def test_srt_and_vtt_cues_are_the_segments(
    server: str, verbose: dict[str, Any], joined: tuple[Path, list[tuple[float, float, str]]]
) -> None:
    srt = _transcribe(server, joined[0], "srt").text
    vtt = _transcribe(server, joined[0], "vtt")
    assert vtt.headers["content-type"].startswith("text/vtt")
    srt_cues = re.findall(rf"(\d+)\n({SRT_TIME}) --> ({SRT_TIME})\n(.+)\n", srt)
    vtt_cues = re.findall(rf"({VTT_TIME}) --> ({VTT_TIME})\n(.+)\n", vtt.text)
    assert vtt.text.startswith("WEBVTT\n\n")
    segments = verbose["segments"]
    assert [int(c[0]) for c in srt_cues] == list(range(1, len(segments) + 1))
    # The same engine on the same audio: the same cues, at the segments' times.
    assert [(_seconds(a), _seconds(b), t) for _n, a, b, t in srt_cues] == [
        (s["start"], s["end"], s["text"]) for s in segments
    ]
    assert [(_seconds(a), _seconds(b), t) for a, b, t in vtt_cues] == [
        (s["start"], s["end"], s["text"]) for s in segments
    ]


def _seconds(clock: str) -> float:
    hours, minutes, seconds = clock.replace(",", ".").split(":")
    return round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 3)


def test_an_unknown_transcript_format_is_a_400_naming_it(server: str, tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    soundfile.write(path, np.zeros(audio.SAMPLE_RATE, np.float32), audio.SAMPLE_RATE)
    files = {"file": ("short.wav", path.read_bytes(), "audio/wav")}
    response = httpx.post(
        f"{server}/v1/audio/transcriptions", files=files, data={"response_format": "docx"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "response_format" in error["message"] and error["type"] == "invalid_request_error"
