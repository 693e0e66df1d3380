"""The HTTP API: OpenAI-compatible speech and chat endpoints, voxloop's own speech-to-speech
turn, health and Prometheus metrics. Endpoints only call the pipeline.

Work runs in worker threads, one `guard.Slot` per request; streamed answers hold their slot
until the last byte is sent, and a client that goes away cancels its turn.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from voxloop import __version__, audio
from voxloop.config import check_timezone
from voxloop.errors import (
    AudioTooLong,
    BackendDown,
    BadAudio,
    BadText,
    ConfigError,
    ModelUnavailable,
    NoSpeech,
    VoxloopError,
)
from voxloop.guard import (
    SERVER_ERROR,
    Admission,
    ApiError,
    ASGIApp,
    BodyLimit,
    RateLimiter,
    Receive,
    Scope,
    Send,
    Slot,
    check_api_key,
    error_body,
)
from voxloop.llm import Message, chat_model_loaded
from voxloop.metrics import Metrics
from voxloop.pipeline import Pipeline
from voxloop.prompts import LANGUAGE_NAMES
from voxloop.stt import engines as stt_engines
from voxloop.turns import Done, Heard, ReplyText, Speech, TurnRequest

if TYPE_CHECKING:
    from voxloop.alarms import StreamDoor

log = logging.getLogger("voxloop.api")
INTERNAL_ERROR = "voxloop failed on this request (a bug: the server's log has the details)."

# OpenAI's voice names: clients send them by habit; they get voxloop's default voice.
OPENAI_VOICES = frozenset(
    [
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "nova",
        "onyx",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    ]
)
# Status and OpenAI-style code of each error a turn can raise (most specific first).
ERROR_STATUS: list[tuple[type[VoxloopError], int, str]] = [
    (NoSpeech, 422, "no_speech"),
    (AudioTooLong, 413, "audio_too_long"),
    (BadAudio, 400, "bad_audio"),
    (BadText, 400, "bad_text"),
    (ConfigError, 400, "bad_setting"),
    (BackendDown, 502, "llm_unavailable"),
    (ModelUnavailable, 503, "model_unavailable"),
    (VoxloopError, 500, "voxloop_error"),
]
SSE_DONE = "data: [DONE]\n\n"
_END: Any = object()  # what `next` returns for a stream that is already over
EVENT_POLL_SECONDS = 1.0  # an alert stream checks this often whether its client left
KEEP_ALIVE_SECONDS = 15.0  # a comment line this often keeps proxies from closing the stream
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
T = TypeVar("T")


class ApiState:
    """What the endpoints share: the pipeline and the guards of one app."""

    def __init__(self, pipeline: Pipeline, alerts: StreamDoor | None = None) -> None:
        server = pipeline.settings.server
        self.pipeline = pipeline
        self.alerts = alerts
        self.api_key = server.api_key
        self.rate = RateLimiter(server.rate_per_minute)
        self.admission = Admission(server.workers, server.max_waiting)


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def authorized(request: Request, authorization: str | None = Header(None)) -> None:
    """Dependency: the bearer token, when the server has an API key."""
    check_api_key(authorization, _state(request).api_key)


def within_rate(request: Request) -> None:
    """Dependency: the caller's address has requests left this minute."""
    _state(request).rate.check(request.client.host if request.client else "unknown")


v1 = APIRouter(prefix="/v1", dependencies=[Depends(authorized), Depends(within_rate)])
ops = APIRouter()


# ---- models -------------------------------------------------------------------------------


class SpeechRequest(BaseModel):
    """POST /v1/audio/speech, as OpenAI's API (`instructions` and the like are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str = "voxloop"
    input: str = Field(min_length=1, description="The text to speak.")
    voice: str | None = Field(None, description="A voxloop voice id (`voxloop voices`).")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)


class ChatMessageIn(BaseModel):
    """One message of a chat request; content is text or a list of text parts."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]]

    def as_message(self) -> Message:
        """The message as the language models take it."""
        content = self.content
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        return Message(role="system" if self.role == "developer" else self.role, content=content)


class ChatRequest(BaseModel):
    """POST /v1/chat/completions (sampling options are the server's own settings)."""

    model_config = ConfigDict(extra="ignore")

    model: str = "voxloop"
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)


# ---- speech to text ------------------------------------------------------------------------


@v1.post("/audio/transcriptions")
async def transcriptions(
    request: Request,
    file: Annotated[UploadFile, File(description="The audio, in any common format.")],
    model: Annotated[str, Form(description="'whisper-1' or any: the default engine.")] = "",
    language: Annotated[str | None, Form(description="ISO 639-1 code, else detected.")] = None,
    response_format: Annotated[Literal["json", "text", "verbose_json"], Form()] = "json",
) -> Response:
    """Transcribe an audio file (OpenAI's `audio.transcriptions.create`)."""
    pipeline = _state(request).pipeline
    engine = model if model in stt_engines.names() else None
    data = await file.read()
    async with await _slot(request):
        samples = await run_in_threadpool(pipeline.load_audio, data)
        transcript = await run_in_threadpool(pipeline.transcribe, samples, engine, language)
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format == "json":
        return JSONResponse({"text": transcript.text})
    seconds = len(samples) / audio.SAMPLE_RATE
    segment = {"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": transcript.text}
    return JSONResponse(
        {
            "task": "transcribe",
            "language": LANGUAGE_NAMES.get(transcript.language, transcript.language).lower(),
            "duration": seconds,
            "text": transcript.text,
            "segments": [segment],
        }
    )


# ---- text to speech ------------------------------------------------------------------------


@v1.post("/audio/speech")
async def speech(request: Request, body: SpeechRequest) -> Response:
    """Speak text, streamed as it is synthesized (OpenAI's `audio.speech.create`)."""
    state = _state(request)
    limit = state.pipeline.settings.server.max_input_chars
    if len(body.input) > limit:
        raise ApiError(
            400, f"The text is {len(body.input)} characters; the limit is {limit}.", "too_long"
        )
    voice = None if body.voice in OPENAI_VOICES else body.voice
    slot, chunks = await _started(
        request, lambda: state.pipeline.speak(body.input, voice, body.speed)
    )
    encoded = audio.encode_stream(chunks, body.response_format)
    return StreamingResponse(
        _released(encoded, slot), media_type=audio.MEDIA_TYPES[body.response_format]
    )


# ---- chat ----------------------------------------------------------------------------------


@v1.post("/chat/completions", response_model=None)
async def chat_completions(request: Request, body: ChatRequest) -> Response:
    """Chat with the configured language model (OpenAI's `chat.completions.create`)."""
    state = _state(request)
    settings = state.pipeline.settings.llm
    wanted = body.max_completion_tokens or body.max_tokens or settings.max_tokens
    max_tokens = min(wanted, settings.context_tokens // 2)  # leave room for the conversation
    messages = [m.as_message() for m in body.messages]
    completion = _Completion(body.model)
    if not body.stream:
        async with await _slot(request):
            pieces = state.pipeline.chat(messages, max_tokens)
            text = await run_in_threadpool(lambda: "".join(pieces))
        return JSONResponse(completion.whole(text))
    cancel = threading.Event()
    slot, pieces = await _started(
        request, lambda: state.pipeline.chat(messages, max_tokens, cancel)
    )
    events = completion.events(pieces)
    return StreamingResponse(_released(events, slot, cancel), media_type="text/event-stream")


class _Completion:
    """The JSON of one chat completion, whole or as stream chunks."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.model = model
        self.created = int(time.time())

    def whole(self, text: str) -> dict[str, Any]:
        """A `chat.completion` object."""
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        return {**self._head("chat.completion"), "choices": [choice]}

    def events(self, pieces: Iterator[str]) -> Iterator[str]:
        """Server-sent `chat.completion.chunk` events; an error mid-stream is sent as one."""
        yield _sse(self._chunk({"role": "assistant", "content": ""}))
        try:
            for piece in pieces:
                if piece:
                    yield _sse(self._chunk({"content": piece}))
        except VoxloopError as err:
            status, code = _status(err)
            yield _sse(error_body(status, str(err), code))
            return
        except Exception:  # a bug: end the stream with an error the client can show
            log.exception("The chat completion failed")
            yield _sse(error_body(500, INTERNAL_ERROR, "internal_error"))
            return
        yield _sse(self._chunk({}, finish_reason="stop"))
        yield SSE_DONE

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return {**self._head("chat.completion.chunk"), "choices": [choice]}

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}


# ---- speech to speech ----------------------------------------------------------------------


@v1.post("/voxloop/turn")
async def turn(
    request: Request,
    file: Annotated[UploadFile | None, File(description="What the person said.")] = None,
    text: Annotated[str | None, Form(description="Or the person's words as text.")] = None,
    voice: Annotated[str | None, Form(description="The reply's voice (`voxloop voices`).")] = None,
    speed: Annotated[float | None, Form(ge=0.25, le=4.0)] = None,
    session: Annotated[str | None, Form(description="Keep the conversation under this id.")] = None,
    system_prompt: Annotated[str | None, Form(description="A persona for this turn.")] = None,
    timezone: Annotated[
        str | None, Form(description="The person's time zone (IANA name, e.g. Europe/Paris).")
    ] = None,
) -> Response:
    """One spoken turn: audio (or text) in; transcript, reply text and reply audio streamed out
    as server-sent events (see the README's API section)."""
    state = _state(request)
    if (file is None) == (text is None):
        raise ApiError(400, "Send either an audio 'file' or a 'text', not both.", "bad_request")
    if timezone is not None:
        _check_timezone(timezone)
    data = await file.read() if file is not None else None
    cancel = threading.Event()

    def events() -> Iterator[Any]:
        samples = None if data is None else state.pipeline.load_audio(data)
        turn_request = TurnRequest(
            audio=samples, text=text, voice=voice, speed=speed, session=session,
            system_prompt=system_prompt, timezone=timezone,
        )  # fmt: skip
        return state.pipeline.run(turn_request, cancel)

    slot, started = await _started(request, events)
    stream = _turn_events(started)
    return StreamingResponse(_released(stream, slot, cancel), media_type="text/event-stream")


def _turn_events(events: Iterator[Any]) -> Iterator[str]:
    """The turn's events as server-sent JSON: transcript, reply, audio, done (or error)."""
    try:
        for event in events:
            if isinstance(event, Heard):
                yield _sse({"type": "transcript", "text": event.text, "language": event.language})
            elif isinstance(event, ReplyText):
                yield _sse({"type": "reply", "delta": event.delta})
            elif isinstance(event, Speech):
                pcm = base64.b64encode(event.chunk.pcm.astype("<i2").tobytes()).decode()
                rate = event.chunk.sample_rate
                yield _sse({"type": "audio", "sample_rate": rate, "pcm_s16le": pcm})
            elif isinstance(event, Done):
                turn = event.turn
                yield _sse(
                    {
                        "type": "done", "transcript": turn.user_text, "reply": turn.heard_reply,
                        "outcome": turn.outcome, "timings_ms": turn.timings_ms,
                        "skill": turn.skill,
                    }
                )  # fmt: skip
    except VoxloopError as err:
        yield _sse({"type": "error", "message": str(err), "code": _status(err)[1]})
    except Exception:  # a bug: the client still gets an ending it can show, the log the trace
        log.exception("The turn failed")
        yield _sse({"type": "error", "message": INTERNAL_ERROR, "code": "internal_error"})


def _check_timezone(name: str) -> None:
    try:
        check_timezone(name)
    except ValueError as err:
        raise ApiError(
            400, f"Unknown time zone '{name}': give an IANA name such as 'Europe/Paris'.",
            "bad_request",
        ) from err  # fmt: skip


@v1.get("/voxloop/timers")
def timers(request: Request, session: str) -> dict[str, Any]:
    """The session's running timers and reminders, soonest first."""
    memory = _state(request).pipeline.memory
    now = time.time()
    running = memory.running_timers(session) if memory is not None else []
    return {
        "timers": [
            {
                "id": t.id, "kind": t.kind, "label": t.label, "seconds": t.seconds,
                "ends_at": datetime.fromtimestamp(t.ends).astimezone().isoformat(),
                "left_seconds": round(t.left(now), 1),
            }
            for t in running
        ]
    }  # fmt: skip


@v1.get("/voxloop/events")
async def alert_events(request: Request, session: str) -> StreamingResponse:
    """The session's alerts (a timer or reminder going off) as server-sent events, each with
    its spoken audio; a comment line keeps the connection alive on long waits."""
    door = _state(request).alerts
    if door is None:
        raise ApiError(404, "This server does not announce timers.", "not_found")
    events = door.subscribe(session)

    async def stream() -> AsyncIterator[str]:
        quiet = 0.0
        try:
            yield ": listening\n\n"
            while not await request.is_disconnected():
                try:
                    event = await run_in_threadpool(events.get, True, EVENT_POLL_SECONDS)
                except queue.Empty:
                    quiet += EVENT_POLL_SECONDS
                    if quiet >= KEEP_ALIVE_SECONDS:
                        quiet = 0.0
                        yield ": ping\n\n"
                    continue
                quiet = 0.0
                yield _sse(event)
        finally:
            door.unsubscribe(session, events)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=STREAM_HEADERS)


# ---- operations ----------------------------------------------------------------------------


@v1.get("/models")
def models(request: Request) -> dict[str, Any]:
    """The models this server answers with (OpenAI's `models.list`)."""
    llm = _state(request).pipeline.settings.llm
    names = ["voxloop", llm.model, *stt_engines.names()]
    return {
        "object": "list",
        "data": [{"id": n, "object": "model", "created": 0, "owned_by": "voxloop"} for n in names],
    }


@ops.get("/health")
def health(request: Request) -> dict[str, Any]:
    """Whether the language model answers ('degraded' after it failed, until it answers again),
    whether it is loaded, the turns served by outcome, and the worker queue."""
    state = _state(request)
    pipeline, admission = state.pipeline, state.admission
    llm = pipeline.settings.llm
    return {
        "status": "degraded" if pipeline.llm_problem else "ok",
        "version": __version__,
        "llm": {
            "backend": llm.backend, "model": llm.model,
            "loaded": chat_model_loaded(pipeline.settings), "problem": pipeline.llm_problem,
        },
        "turns": dict(pipeline.metrics.turn_counts),
        "working": admission.working,
        "waiting": admission.waiting,
        "workers": admission.workers,
    }  # fmt: skip


@ops.get("/metrics", dependencies=[Depends(authorized)])
def metrics(request: Request) -> Response:
    """Prometheus metrics: per-stage latency, turns, errors, requests, active sessions."""
    pipeline_metrics = _state(request).pipeline.metrics
    return Response(pipeline_metrics.render(), media_type=pipeline_metrics.content_type)


# ---- plumbing ------------------------------------------------------------------------------


def install(
    app: FastAPI,
    pipeline: Pipeline,
    active_pages: Callable[[], int],
    alerts: StreamDoor | None = None,
) -> None:
    """Add the API to `app`: routes, error answers, upload limit, request metrics."""
    state = ApiState(pipeline, alerts)
    app.state.api = state
    app.include_router(v1)
    app.include_router(ops)
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(VoxloopError, _voxloop_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, max_megabytes=pipeline.settings.audio.max_megabytes)
    app.add_middleware(RequestCounter, metrics=pipeline.metrics)  # outermost: counts 413s too
    admission = state.admission
    pipeline.metrics.count_active_sessions(
        lambda: active_pages() + admission.working + admission.waiting
    )


class RequestCounter:
    """ASGI middleware: count API answers by endpoint and status for /metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics
        self.endpoints = {route.path for route in v1.routes if isinstance(route, APIRoute)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in self.endpoints else "other"

        async def counted(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.metrics.record_request(endpoint, message["status"])
            await send(message)

        await self.app(scope, receive, counted)


async def _slot(request: Request) -> Slot:
    return await _state(request).admission.enter()


async def _started(request: Request, start: Callable[[], Iterator[T]]) -> tuple[Slot, Iterator[T]]:
    """A work slot and the stream `start()` makes, its first item already made (in a worker
    thread): a bad voice, no speech or an unreachable model then fail as an HTTP status,
    before a 200 has been sent."""
    slot = await _slot(request)
    try:
        parts = await run_in_threadpool(start)
        first = await run_in_threadpool(next, parts, _END)
    except BaseException:
        slot.release()
        raise
    return slot, (parts if first is _END else itertools.chain([first], parts))


async def _released(
    parts: Iterator[Any], slot: Slot, cancel: threading.Event | None = None
) -> AsyncIterator[Any]:
    """Stream `parts` (made in worker threads); then, or when the client leaves, free the slot."""
    try:
        async for part in iterate_in_threadpool(parts):
            yield part
    finally:
        if cancel is not None:
            cancel.set()  # the client left: stop the model and the synthesis
        slot.release()
        with contextlib.suppress(ValueError):  # still running in its thread: it ends on cancel
            close = getattr(parts, "close", None)
            if close is not None:
                close()


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _status(err: VoxloopError) -> tuple[int, str]:
    return next((status, code) for kind, status, code in ERROR_STATUS if isinstance(err, kind))


async def _api_error(_request: Request, err: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(err.status_code, err.message, err.code), err.status_code, err.headers
    )


async def _voxloop_error(_request: Request, err: VoxloopError) -> JSONResponse:
    status, code = _status(err)
    if status >= SERVER_ERROR:
        log.warning("API request failed: %s", err)
    return JSONResponse(error_body(status, str(err), code), status)


async def _invalid_request(_request: Request, err: RequestValidationError) -> JSONResponse:
    """400, naming the first field that is missing or wrong."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "header"))
    if not field:
        message = "The request has no body: send its fields as JSON (or a form, for files)."
    elif first["type"] == "missing":
        message = f"The field '{field}' is required."
    elif first["type"] == "json_invalid":
        message = "The request body is not valid JSON."
    else:
        message = f"The field '{field}' is not valid: {first['msg']}."
    return JSONResponse(error_body(400, message, "invalid_request"), 400)
