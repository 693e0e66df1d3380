"""Benchmarks that print JSON: `voxloop bench <suite>` (see SUITES).

Each engine is measured in a fresh process, so its load time and peak memory are its own.
Suites with their own data live in modules of this package and register in SUITES.
Progress bars go to stderr (stdout is the JSON); TQDM_DISABLE=1 hides them.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from voxloop.config import Settings
from voxloop.errors import VoxloopError

STT_ENGINES = ("moonshine", "whisper")
LLM_MODELS = ("qwen2.5-1.5b", "qwen2.5-0.5b", "smollm2-135m")
TTS_VOICES = ("joe", "jf_alpha", "espeak-en-f")
LLM_PROMPTS = (
    "What is the capital of France?",
    "Name three colours.",
    "Why is the sky blue?",
    "What is two plus two?",
    "Give me a tip for sleeping better.",
)
TTS_SENTENCES = (
    "The capital of France is Paris.",
    "Here is a longer sentence, so that the real-time factor is measured on enough audio.",
    "Thank you, and have a wonderful day.",
)


# Spoken (3-5 s each) by a Kokoro voice, a different engine from the one that answers.
LATENCY_QUESTIONS = (
    "Could you explain to me why the sky looks blue during the day?",
    "What is the capital city of France, and what is it famous for?",
    "How do bees make honey from the flowers in a garden?",
    "Can you give me a few tips for sleeping better at night?",
    "What is the difference between a virus and a bacterium?",
    "Why do we have different seasons during the year on Earth?",
    "How does a rainbow form after a summer rain shower?",
    "What should I pack for a weekend hiking trip in the mountains?",
    "Who was Albert Einstein, and why is he so well known?",
    "How can I make a really good cup of tea at home in the morning?",
)
FEED_FRAME_SAMPLES = 512  # what the page's microphone worklet sends
HANDSFREE_LEAD_SECONDS = 1.0  # silence fed after each question (after its turn may have ended)
HANDSFREE_SESSIONS_ENV = "VOXLOOP_BENCH_HANDSFREE_SESSIONS"  # conversations at once
# "1": each question in a conversation of its own (no history growing from turn to turn)
HANDSFREE_FRESH_ENV = "VOXLOOP_BENCH_HANDSFREE_FRESH"
QUESTION_VOICE = "jm_kumo"  # Kokoro: clear speech from another engine than the reply's
QUESTION_SPEED = 0.9  # gives 3-5 s questions
LONGFORM_MINUTES = (10, 20)  # twice as long: memory must stay the same
LONGFORM_WARM_UP_SECONDS = 60  # a short recording first, so every engine is warm
SECONDS_PER_MINUTE = 60
HALF = 0.5
# The priority suite: questions asked while a recording this long is processed, a pause apart.
PRIORITY_MINUTES = 5
PRIORITY_PAUSE_SECONDS = 1.0
LOAD_CLIENTS = 8
LOAD_SECONDS = 180
# Issue 15's other scenario: conversations at a person's pace (speak the question, listen to
# the whole answer, pause, speak again), as hands-free satellites of one household would.
PACED_CONVERSATIONS = 4
PACED_PAUSE_SECONDS = 2.0
# A comma-separated subset of LOAD_SCENARIOS to run (default: both).
LOAD_SCENARIOS_ENV = "VOXLOOP_BENCH_LOAD_SCENARIOS"
# scenario -> (conversations at once, whether each speaks and listens at a person's pace)
LOAD_SCENARIOS = {"back_to_back": (LOAD_CLIENTS, False), "paced": (PACED_CONVERSATIONS, True)}
SERVER_START_SECONDS = 180
AUDIBLE_GAP_MS = 100  # silence in the middle of a reply that a listener notices
TURN_TIMEOUT_SECONDS = 300
BUSY = 503


Suite = Callable[[Settings], dict[str, Any]]
SUITES: dict[str, Suite] = {}  # name -> suite; filled below and by the suite modules
T = TypeVar("T")


def suite(name: str) -> Callable[[Suite], Suite]:
    """Decorator: make a function runnable as `voxloop bench <name>`."""

    def add(function: Suite) -> Suite:
        SUITES[name] = function
        return function

    return add


# Evaluation sets (questions, transcripts, key facts) sit beside the package in a source
# checkout, not inside it: they are the project's, not the product's.
DATA_DIR = Path(__file__).resolve().parents[1]  # benchmarks/: the data beside this package


def data_file(name: str) -> Path:
    """A file of the evaluation data (`benchmarks/<name>` in a source checkout)."""
    path = DATA_DIR / name
    if not path.is_file():
        raise VoxloopError(
            f"The benchmark data {name} is missing: `voxloop bench` needs a source checkout of "
            "voxloop (installed with `pip install -e .`), which has the benchmarks/ folder."
        )
    return path


def progress(
    items: Iterable[T], description: str, unit: str, total: int | None = None
) -> Iterable[T]:
    """`items`, counted on a progress bar on stderr (with an ETA when their number is known);
    the bar closes when they run out."""
    from tqdm import tqdm

    bar: Iterable[T] = tqdm(items, desc=description, unit=unit, total=total, file=sys.stderr)
    return bar


def progress_bar(description: str, unit: str, total: int | None = None) -> Any:
    """A progress bar on stderr moved on by hand (`update`); close it, or use it in `with`."""
    from tqdm import tqdm

    return tqdm(desc=description, unit=unit, total=total, file=sys.stderr)


def run(name: str, settings: Settings) -> dict[str, Any]:
    """Run a benchmark suite and return its results as JSON-able data."""
    return {"suite": name, "machine": _machine(), **SUITES[name](settings)}


@suite("latency")
def latency(settings: Settings) -> dict[str, Any]:
    """Spoken question in -> first audio out: the streaming pipeline vs a non-streaming cascade.

    The cascade is the seed app's design on the same models: transcribe, generate the whole
    reply, synthesize all of it, then play.
    """
    from voxloop import audio
    from voxloop.pipeline import Pipeline

    pipeline = Pipeline(settings)
    pipeline.warm_up()
    questions = _spoken_questions(settings)
    streaming = [
        _streaming_turn(pipeline, question)
        for question in progress(questions, "latency streaming", "question")
    ]
    cascade = [
        _cascade_turn(pipeline, question)
        for question in progress(questions, "latency cascade", "question")
    ]
    streaming_p50 = statistics.median(t["first_audio"] for t in streaming)
    cascade_p50 = statistics.median(t["first_audio"] for t in cascade)
    return {
        "questions": len(questions),
        "question_seconds": [round(len(q) / audio.SAMPLE_RATE, 1) for q in questions],
        "streaming": _summary(streaming),
        "cascade": _summary(cascade),
        "ratio": round(streaming_p50 / cascade_p50, 3),
    }


@suite("handsfree")
def handsfree(settings: Settings) -> dict[str, Any]:
    """End of speech -> first audio in hands-free mode: each question is fed as microphone
    frames in real time, then silence until the answer has been spoken (no page attached);
    VOXLOOP_BENCH_HANDSFREE_SESSIONS conversations at once (default 1)."""
    from concurrent.futures import ThreadPoolExecutor

    from voxloop.pipeline import Pipeline

    pipeline = Pipeline(settings)
    pipeline.warm_up()
    questions = _spoken_questions(settings)
    sessions = int(os.environ.get(HANDSFREE_SESSIONS_ENV, "1"))
    with ThreadPoolExecutor(sessions) as pool:
        runs = list(pool.map(lambda n: _handsfree_session(pipeline, questions, n), range(sessions)))
    latencies = [ms for run in runs for ms in run]
    return {
        "sessions": sessions,
        "fresh_conversations": os.environ.get(HANDSFREE_FRESH_ENV) == "1",
        "evaluate_ahead": settings.handsfree.evaluate_ahead,
        "end_of_turn": settings.vad.end_of_turn,
        "questions": len(latencies),
        "silence_window_ms": settings.vad.silence_ms,
        "end_of_speech_to_first_audio_ms": {
            "p50": round(statistics.median(latencies)),
            "p95": round(_percentile(latencies, 0.95)),
            "all": [round(ms) for ms in latencies],
        },
    }


def _handsfree_session(pipeline: Any, questions: list[np.ndarray], number: int) -> list[float]:
    """One hands-free conversation asking every question (starting at the `number`th)."""
    from voxloop.handsfree import HandsFree, Options
    from voxloop.live import LiveSessions

    vad = pipeline.settings.vad
    # Long enough for the turn to end, also when an end-of-turn model waits `turn_wait_ms`.
    longest_end_ms = vad.silence_ms if vad.end_of_turn == "silence" else vad.turn_wait_ms
    lead_seconds = HANDSFREE_LEAD_SECONDS + longest_end_ms / 1000
    frame = np.zeros(FEED_FRAME_SAMPLES, np.float32)
    turns = questions[number:] + questions[:number]
    fresh = os.environ.get(HANDSFREE_FRESH_ENV) == "1"
    conversations = [[question] for question in turns] if fresh else [turns]
    latencies: list[float] = []
    with progress_bar(f"handsfree {number}", "question", len(turns)) as bar:
        for index, asking in enumerate(conversations):
            session = HandsFree(pipeline, LiveSessions(), f"bench-{number}-{index}", Options())
            for question in asking:
                feed_like_a_microphone(session.feed, question)
                started = time.monotonic()
                while time.monotonic() - started < lead_seconds or session.conversation.busy():
                    feed_like_a_microphone(session.feed, frame)
                bar.update(1)
            session.close()
            latencies += session.conversation.latencies_ms
    return latencies


def feed_like_a_microphone(
    feed: Callable[[bytes], None], samples: np.ndarray, real_time: bool = True
) -> None:
    """Give 16 kHz audio to `feed` (a conversation's) in the page's 32 ms int16 frames, at the
    pace a microphone delivers them (or at once, with `real_time=False`)."""
    from voxloop import audio

    started = time.monotonic()
    for start in range(0, len(samples), FEED_FRAME_SAMPLES):
        piece = samples[start : start + FEED_FRAME_SAMPLES]
        feed(audio.to_int16(piece).tobytes())
        if real_time:  # paced against the start, so sleeping late does not add up
            due = started + (start + len(piece)) / audio.SAMPLE_RATE
            time.sleep(max(0.0, due - time.monotonic()))


def _spoken_questions(settings: Settings) -> list[np.ndarray]:
    from voxloop import audio, tts

    spoken = []
    for question in progress(LATENCY_QUESTIONS, "speaking the questions", "question"):
        chunks = tts.synthesize(
            question, QUESTION_VOICE, cache_dir=settings.cache_dir, speed=QUESTION_SPEED
        )
        joined = audio.join_chunks(list(chunks))
        spoken.append(audio.to_mono_16k(joined.pcm, joined.sample_rate))
    return spoken


def _streaming_turn(pipeline: Any, question: Any) -> dict[str, float]:
    from voxloop.turns import Done, TurnRequest

    events = list(pipeline.run(TurnRequest(audio=question)))
    done = events[-1]
    assert isinstance(done, Done)
    return done.turn.timings_ms


def _cascade_turn(pipeline: Any, question: Any) -> dict[str, float]:
    from voxloop import text, tts
    from voxloop.prompts import build_messages

    settings = pipeline.settings
    started = time.perf_counter()
    transcript = pipeline.transcribe(question)
    stt = time.perf_counter()
    messages = build_messages(settings.system_prompt, [], transcript.text)
    reply = "".join(pipeline.chat_model.stream(messages, max_tokens=settings.llm.max_tokens))
    generated = time.perf_counter()
    voice = settings.tts.voice
    list(tts.synthesize(text.speakable(reply), voice, cache_dir=settings.cache_dir))
    spoken = time.perf_counter()
    return {
        "stt": (stt - started) * 1000,
        "llm_done": (generated - started) * 1000,
        "first_audio": (spoken - started) * 1000,
        "total": (spoken - started) * 1000,
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _summary(turns: list[dict[str, float]]) -> dict[str, Any]:
    stages = [stage for stage in turns[0] if all(stage in t for t in turns)]
    return {
        f"{stage}_ms": {
            "p50": round(statistics.median(t[stage] for t in turns)),
            "p95": round(_percentile([t[stage] for t in turns], 0.95)),
        }
        for stage in stages
    }


@suite("engines")
def engines(settings: Settings) -> dict[str, Any]:
    """Accuracy, speed, load time and peak memory of every default engine."""
    processes = 1 + len(STT_ENGINES) + len(LLM_MODELS) + len(TTS_VOICES)
    with progress_bar("engines", "engine", processes) as bar:

        def measured(function: Callable[..., Any], *args: Any) -> Any:
            bar.set_postfix_str(" ".join(map(str, args)))
            result = _isolated(function, settings, *args)
            bar.update()
            return result

        return {
            "baseline_rss_mb": measured(_baseline),
            "stt": {name: measured(_stt, name) for name in STT_ENGINES},
            "llm": {name: measured(_llm, name) for name in LLM_MODELS},
            "tts": {voice: measured(_tts, voice) for voice in TTS_VOICES},
        }


@suite("longform")
def longform(settings: Settings) -> dict[str, Any]:
    """Long recordings of 10 and 20 minutes (built from real recordings), each in a fresh
    process: seconds and peak memory per audio minute of transcription and of the summary;
    then `quality`: the key facts summaries name (the `summaries` suite, bench/summaries.py)."""
    from voxloop_bench import recordings

    folder = settings.cache_dir / "bench-recordings"
    warm_up = recordings.long_recording(folder / "long-1min.mp3", LONGFORM_WARM_UP_SECONDS)
    runs = {}
    for minutes in progress(LONGFORM_MINUTES, "longform", "recording"):
        path = recordings.long_recording(
            folder / f"long-{minutes}min.mp3", minutes * SECONDS_PER_MINUTE
        )
        runs[f"{minutes}min"] = _per_audio_minute(measure_longform(settings, path, warm_up))
    return {
        "warm_up_seconds": LONGFORM_WARM_UP_SECONDS,
        "recordings": runs,
        "quality": SUITES["summaries"](settings),  # key facts the summaries name
    }


@suite("priority")
def priority(settings: Settings) -> dict[str, Any]:
    """First audio of spoken questions asked while a long recording is transcribed and
    summarized in the same process: the recording giving way (`longform.yield_to_turns`) or
    not, beside the same questions alone."""
    from voxloop.pipeline import Pipeline
    from voxloop_bench import recordings

    path = recordings.long_recording(
        settings.cache_dir / "bench-recordings" / f"long-{PRIORITY_MINUTES}min.mp3",
        PRIORITY_MINUTES * SECONDS_PER_MINUTE,
    )
    pipeline = Pipeline(settings)
    pipeline.warm_up()
    questions = _spoken_questions(settings)
    alone = [_streaming_turn(pipeline, q) for q in progress(questions, "priority alone", "turn")]
    report: dict[str, Any] = {"recording_minutes": PRIORITY_MINUTES, "alone": _summary(alone)}
    for giving_way in (True, False):
        longform = settings.longform.model_copy(update={"yield_to_turns": giving_way})
        beside = settings.model_copy(update={"longform": longform})
        turns = _turns_beside_recording(pipeline, questions, beside, path)
        report[f"yield_to_turns={giving_way}"] = turns
    return report


def _turns_beside_recording(
    pipeline: Any, questions: list[np.ndarray], settings: Settings, path: Path
) -> dict[str, Any]:
    """Spoken turns one after another (a pause between) for as long as `path` is being
    transcribed and summarized in another thread, by the stage the recording was in."""
    import threading

    from voxloop import longform

    stage = {"now": "transcribing"}

    def follow(fraction: float, _message: str) -> None:
        if fraction > longform.TRANSCRIPTION_SHARE:
            stage["now"] = "summarizing"

    started = time.perf_counter()
    bulk = threading.Thread(target=longform.process, args=(path, settings, follow))
    bulk.start()
    turns: dict[str, list[dict[str, float]]] = defaultdict(list)
    with progress_bar("priority beside a recording", "turn") as bar:
        while bulk.is_alive():
            time.sleep(PRIORITY_PAUSE_SECONDS)
            now = stage["now"]
            turns[now].append(_streaming_turn(pipeline, questions[bar.n % len(questions)]))
            bar.update()
    bulk.join()
    return {
        "recording_seconds": round(time.perf_counter() - started, 1),
        **{f"while_{name}": {"turns": len(t), **_summary(t)} for name, t in turns.items()},
    }


def measure_longform(settings: Settings, path: Path, warm_up: Path) -> dict[str, Any]:
    """Transcribe and summarize a long recording in a fresh process, after `warm_up` (a short
    recording, so every engine is loaded and warm): the recording, progress and figures."""
    return dict(_isolated(_longform, settings, path, warm_up))


def _longform(settings: Settings, path: Path, warm_up: Path) -> dict[str, Any]:
    from voxloop import longform

    # Transcribing again after the summary: the model's weights are resident from then on,
    # and the peak of both stages together is reached only by a transcription after them.
    longform.summarize(longform.transcribe(warm_up, settings), settings)
    longform.transcribe(warm_up, settings)
    rss = {"warm": _peak_rss_mb()}
    progress: list[float] = []

    def record(fraction: float, _message: str) -> None:
        progress.append(fraction)
        if fraction >= HALF:  # the peak when half the recording is transcribed
            rss.setdefault("half_transcribed", _peak_rss_mb())

    started = time.perf_counter()
    transcript = longform.transcribe(path, settings, record)
    transcribed, rss["transcription"] = time.perf_counter(), _peak_rss_mb()
    summary = longform.summarize(transcript, settings)
    rss["summary"] = _peak_rss_mb()
    return {
        "recording": longform.LongRecording(transcript, summary).to_json(),
        "progress": progress,
        "transcription_seconds": round(transcribed - started, 2),
        "summary_seconds": round(time.perf_counter() - transcribed, 2),
        "peak_rss_mb": rss,
    }


def _per_audio_minute(run: dict[str, Any]) -> dict[str, Any]:
    from voxloop.longform import LongRecording

    recording = LongRecording.from_json(run["recording"])
    minutes = recording.transcript.duration / SECONDS_PER_MINUTE
    rss = run["peak_rss_mb"]
    return {
        "audio_minutes": round(minutes, 2),
        "segments": len(recording.transcript.segments),
        "transcription_seconds_per_audio_minute": round(run["transcription_seconds"] / minutes, 2),
        "summary_seconds_per_audio_minute": round(run["summary_seconds"] / minutes, 2),
        "peak_rss_mb": rss,
        "peak_rss_growth_mb_per_audio_minute": round((rss["summary"] - rss["warm"]) / minutes, 2),
        "peak_rss_growth_mb": {
            "first_half": round(rss["half_transcribed"] - rss["warm"], 1),
            "second_half": round(rss["transcription"] - rss["half_transcribed"], 1),
            "summary": round(rss["summary"] - rss["transcription"], 1),
        },
        "summary": recording.summary,
    }


@suite("load")
def load(settings: Settings) -> dict[str, Any]:
    """Clients talk to one `voxloop serve` on loopback for LOAD_SECONDS: LOAD_CLIENTS sending
    turns back to back, and PACED_CONVERSATIONS at a person's pace."""
    import tempfile

    from voxloop import audio

    spoken = _spoken_questions(settings)
    questions = [audio.wav_bytes(audio.to_int16(q), audio.SAMPLE_RATE) for q in spoken]
    seconds = [len(q) / audio.SAMPLE_RATE for q in spoken]
    chosen = [s for s in os.environ.get(LOAD_SCENARIOS_ENV, "").split(",") if s]
    unknown = set(chosen) - set(LOAD_SCENARIOS)
    if unknown:
        raise VoxloopError(f"Unknown load scenarios {sorted(unknown)}: see {list(LOAD_SCENARIOS)}.")
    results = {}
    for scenario in chosen or LOAD_SCENARIOS:
        clients, paced = LOAD_SCENARIOS[scenario]
        with tempfile.TemporaryDirectory() as data_dir, local_server(Path(data_dir)) as (url, p):
            speaking_seconds = seconds if paced else None
            results[scenario] = measure_load(
                url, questions, clients, LOAD_SECONDS, p.pid, speaking_seconds=speaking_seconds
            )
    return results


def measure_load(
    url: str,
    questions: list[bytes],
    clients: int,
    seconds: float,
    server_pid: int,
    speaking_seconds: list[float] | None = None,
) -> dict[str, Any]:
    """Each client sends turns (to `url`'s /v1/voxloop/turn) until time is up: back to back, or,
    with `speaking_seconds` (each question's length), at a person's pace: it speaks the question
    (waits its length), sends it, listens to the whole answer, pauses, and speaks again."""
    from concurrent.futures import ThreadPoolExecutor

    deadline = time.monotonic() + seconds
    started = time.monotonic()

    def client(number: int) -> list[dict[str, Any]]:
        results = []
        turn = number
        while time.monotonic() < deadline:
            question = turn % len(questions)
            if speaking_seconds is not None:
                time.sleep(speaking_seconds[question])
            results.append(_load_turn(url, questions[question]))
            bar.update()
            if speaking_seconds is not None:
                time.sleep(results[-1].get("listening_s", 0.0) + PACED_PAUSE_SECONDS)
            turn += clients
        return results

    # Counts turns as they end (how many fit in `seconds` is what is measured: no total).
    with ThreadPoolExecutor(clients) as pool, progress_bar("load", "turn") as bar:
        results = [r for client_results in pool.map(client, range(clients)) for r in client_results]
    elapsed = time.monotonic() - started
    answered = [r for r in results if r["outcome"] == "answered"]
    errors = [r["error"] for r in results if r["outcome"] == "error"]
    return {
        "clients": clients,
        "paced": speaking_seconds is not None,
        "seconds": round(elapsed),
        "turns_answered": len(answered),
        "turns_per_minute": round(len(answered) / elapsed * SECONDS_PER_MINUTE, 1),
        **(_summary([r["timings_ms"] for r in answered]) if answered else {}),
        "turns_with_audible_gaps": sum(
            r["timings_ms"]["sound_gaps"] >= AUDIBLE_GAP_MS for r in answered
        ),
        "busy": sum(r["outcome"] == "busy" for r in results),
        "errors": len(errors),
        "error_messages": sorted(set(errors))[:5],
        "server_peak_rss_mb": _process_peak_rss_mb(server_pid),
    }


def _load_turn(url: str, question: bytes) -> dict[str, Any]:
    """One spoken turn as a client sees it (time to the first audio and to the end, waiting
    for a worker included) and as the server timed it once the turn began (`in_server_*`)."""
    import json

    import httpx

    started = time.perf_counter()
    in_server: dict[str, float] = {}
    chunks: list[tuple[float, float]] = []  # (arrived, seconds of sound) per audio event
    try:
        with httpx.stream(
            "POST", f"{url}/v1/voxloop/turn",
            files={"file": ("question.wav", question, "audio/wav")}, timeout=TURN_TIMEOUT_SECONDS,
        ) as response:  # fmt: skip
            if response.status_code == BUSY:
                time.sleep(float(response.headers.get("Retry-After", 1)))
                return {"outcome": "busy"}
            if response.status_code != httpx.codes.OK:
                return {"outcome": "error", "error": f"{response.status_code}: {response.read()!r}"}
            for line in response.iter_lines():
                event = json.loads(line[5:]) if line.startswith("data:") else {}
                if event.get("type") == "audio":
                    samples = len(event["pcm_s16le"]) * 3 // 4 // 2  # base64 of 16-bit samples
                    chunks.append((time.perf_counter(), samples / event["sample_rate"]))
                elif event.get("type") == "done":  # the server's timings: no time queued
                    in_server = {f"in_server_{k}": v for k, v in event["timings_ms"].items()}
                elif event.get("type") == "error":
                    return {"outcome": "error", "error": event["message"]}
    except httpx.HTTPError as err:
        return {"outcome": "error", "error": f"{type(err).__name__}: {err}"}
    if not chunks:
        return {"outcome": "error", "error": "the reply had no audio"}
    ended = time.perf_counter()
    first_audio, gaps = chunks[0][0], sound_gaps(chunks)
    reply_seconds = sum(seconds for _arrived, seconds in chunks)
    return {
        "outcome": "answered",
        # what a person still hears after the stream ends: playback began at the first audio
        # and stopped while a chunk was late
        "listening_s": max(0.0, first_audio + reply_seconds + gaps - ended),
        "timings_ms": {
            "first_audio": _ms(first_audio - started),
            "total": _ms(ended - started),
            "sound_gaps": _ms(gaps),
            **in_server,
        },
    }


def sound_gaps(chunks: list[tuple[float, float]]) -> float:
    """Seconds of silence a listener hears in the middle of a reply streamed as `chunks`
    (when each arrived, how many seconds of sound it holds), playing from the first one: each
    chunk is needed once all the sound before it, and any silence while it was late, has
    played."""
    if not chunks:
        return 0.0
    first_arrived, gaps, played = chunks[0][0], 0.0, 0.0
    for arrived, seconds in chunks:
        gaps += max(0.0, arrived - (first_arrived + played + gaps))
        played += seconds
    return gaps


@contextmanager
def local_server(data_dir: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`voxloop serve` in a subprocess on a free loopback port, once its models are loaded."""
    import sys

    port = free_port()
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "voxloop.cli", "serve", "--port", str(port)],
            env={**os.environ, "VOXLOOP_DATA_DIR": str(data_dir), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + SERVER_START_SECONDS
            while "voxloop is ready" not in log_path.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise VoxloopError(
                        f"voxloop serve did not start:\n{log_path.read_text()[-2000:]}"
                    )
                time.sleep(0.3)
            yield f"http://127.0.0.1:{port}", process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def free_port() -> int:
    """A loopback TCP port nobody listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _process_peak_rss_mb(pid: int) -> float:
    """The peak resident memory of a running process (Linux: VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _machine() -> dict[str, Any]:
    return {"cpus": multiprocessing.cpu_count(), "processor": platform.machine()}


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _isolated(function: Callable[..., Any], *args: Any) -> Any:
    """Run `function(*args)` in a fresh process and return its result."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def _baseline(settings: Settings) -> float:
    import voxloop.pipeline  # noqa: F401  (everything a process imports before loading models)

    return _peak_rss_mb()


def _stt(settings: Settings, engine: str) -> dict[str, Any]:
    from voxloop import audio
    from voxloop.stt import get_transcriber
    from voxloop_bench import recordings

    started = time.perf_counter()
    transcriber = get_transcriber(settings, engine)
    load = time.perf_counter() - started
    if not recordings.available():
        return {"load_ms": _ms(load), "error": "pocketsphinx-testdata is not installed"}
    pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    busy = heard = 0.0
    for recording in recordings.real_recordings(settings.cache_dir / "bench-recordings"):
        samples = audio.load(recording.path)
        started = time.perf_counter()
        text = transcriber.transcribe(samples).text
        busy += time.perf_counter() - started
        heard += len(samples) / audio.SAMPLE_RATE
        pairs[recording.kind].append((recording.text, text))
    everything = [pair for kind_pairs in pairs.values() for pair in kind_pairs]
    return {
        "load_ms": _ms(load),
        "wer": round(recordings.wer(everything), 4),
        "wer_by_kind": {kind: round(recordings.wer(p), 4) for kind, p in pairs.items()},
        "recordings": len(everything),
        "audio_seconds": round(heard, 1),
        "rtf": round(busy / heard, 4),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _llm(settings: Settings, model: str) -> dict[str, Any]:
    from voxloop.config import load_settings
    from voxloop.llm import get_chat_model
    from voxloop.prompts import build_messages

    settings = load_settings(llm={**settings.llm.model_dump(), "model": model})
    started = time.perf_counter()
    chat = get_chat_model(settings)
    load = time.perf_counter() - started
    for _ in chat.stream(build_messages(settings.system_prompt, [], "Hi."), max_tokens=1):
        pass  # evaluates the system prompt once, as the app's warm-up does
    first_tokens, rates = [], []
    for prompt in LLM_PROMPTS:
        started = time.perf_counter()
        stamps = [
            time.perf_counter()
            for _ in chat.stream(build_messages(settings.system_prompt, [], prompt), max_tokens=64)
        ]
        first_tokens.append(stamps[0] - started)
        if len(stamps) > 1:
            rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return {
        "load_ms": _ms(load),
        "first_token_ms_p50": _ms(statistics.median(first_tokens)),
        "tokens_per_second": round(statistics.median(rates), 1),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _tts(settings: Settings, voice: str) -> dict[str, Any]:
    from voxloop.tts import synthesize

    def speak(text: str) -> tuple[float, float, float]:
        started = time.perf_counter()
        first, seconds = 0.0, 0.0
        for chunk in synthesize(text, voice, cache_dir=settings.cache_dir):
            first = first or time.perf_counter() - started
            seconds += chunk.seconds
        return first, time.perf_counter() - started, seconds

    started = time.perf_counter()
    speak("Loading.")
    load = time.perf_counter() - started
    runs = [speak(sentence) for sentence in TTS_SENTENCES]
    return {
        "load_ms": _ms(load),
        "first_chunk_ms_p50": _ms(statistics.median(first for first, _, _ in runs)),
        "rtf": round(sum(busy for _, busy, _ in runs) / sum(s for _, _, s in runs), 4),
        "peak_rss_mb": _peak_rss_mb(),
    }


# Suites in their own modules register themselves when imported (after `suite` is defined).
from voxloop_bench import (  # noqa: E402
    answers,  # noqa: F401
    end_of_turn,  # noqa: F401
    realtime,  # noqa: F401
    record_button,  # noqa: F401
    skills,  # noqa: F401
    speech_to_text,  # noqa: F401
    summaries,  # noqa: F401
    wake,  # noqa: F401
)
