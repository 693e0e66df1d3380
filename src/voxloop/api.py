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
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
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
    StoreUnavailable,
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
from voxloop.llm import Message, Sampling, Usage, chat_model_loaded
from voxloop.metrics import Metrics
from voxloop.pipeline import Pipeline
from voxloop.prompts import LANGUAGE_NAMES
from voxloop.stt import engines as stt_engines
from voxloop.stt import timed
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
    (StoreUnavailable, 503, "store_unavailable"),
    (VoxloopError, 500, "voxloop_error"),
]
SSE_DONE = "[DONE]"  # the data of the chat stream's last event, as OpenAI ends it
SSE_SEPARATOR = "\n"  # events end with a blank line; lines end with a plain newline
_END: Any = object()  # what `next` returns for a stream that is already over
EVENT_POLL_SECONDS = 1.0  # an alert stream waits this long at a time for the next alert
# No-cache and X-Accel-Buffering keep proxies (nginx and the like) from holding a stream back.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
TIMED_FORMATS = ("verbose_json", "srt", "vtt")  # transcript formats that need segment times
VTT_MEDIA_TYPE = "text/vtt"
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


class StreamOptions(BaseModel):
    """A streamed chat's options: `include_usage` adds a last chunk with the token counts."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """POST /v1/chat/completions (sampling options not given are the server's settings)."""

    model_config = ConfigDict(extra="ignore")

    model: str = "voxloop"
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | Annotated[list[str], Field(max_length=4)] | None = Field(
        None, description="Up to 4 strings; the reply ends before the first of them."
    )

    def sampling(self) -> Sampling:
        """The request's sampling choices, as the language models take them."""
        stop = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return Sampling(self.temperature, self.top_p, tuple(s for s in stop if s))


# ---- speech to text ------------------------------------------------------------------------


@v1.post("/audio/transcriptions")
async def transcriptions(
    request: Request,
    file: Annotated[UploadFile, File(description="The audio, in any common format.")],
    model: Annotated[str, Form(description="'whisper-1' or any: the default engine.")] = "",
    language: Annotated[str | None, Form(description="ISO 639-1 code, else detected.")] = None,
    response_format: Annotated[
        Literal["json", "text", "verbose_json", "srt", "vtt"],
        Form(description="verbose_json, srt and vtt give segments with their times."),
    ] = "json",
) -> Response:
    """Transcribe an audio file (OpenAI's `audio.transcriptions.create`)."""
    pipeline = _state(request).pipeline
    engine = model if model in stt_engines.names() else None
    data = await file.read()
    async with await _slot(request):
        samples = await run_in_threadpool(pipeline.load_audio, data)
        if response_format in TIMED_FORMATS:
            segmented = await run_in_threadpool(
                timed.transcribe, samples, pipeline.settings, engine, language
            )
            return _timed_response(segmented, response_format)
        transcript = await run_in_threadpool(pipeline.transcribe, samples, engine, language)
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    return JSONResponse({"text": transcript.text})


def _timed_response(transcript: timed.TimedTranscript, response_format: str) -> Response:
    """A transcript with segment times as `verbose_json`, SubRip or WebVTT."""
    if response_format == "srt":
        return PlainTextResponse(timed.srt(transcript.segments))
    if response_format == "vtt":
        return PlainTextResponse(timed.vtt(transcript.segments), media_type=VTT_MEDIA_TYPE)
    return JSONResponse(_verbose(transcript))


def _verbose(transcript: timed.TimedTranscript) -> dict[str, Any]:
    """A transcript as OpenAI's `verbose_json`: language name, duration, timed segments."""
    segments = [
        {"id": n, "seek": 0, "start": s.start, "end": s.end, "text": s.text}
        for n, s in enumerate(transcript.segments)
    ]
    language = LANGUAGE_NAMES.get(transcript.language, transcript.language).lower()
    return {
        "task": "transcribe", "language": language, "duration": transcript.duration,
        "text": transcript.text, "segments": segments,
    }  # fmt: skip


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
        _released(encoded, slot),
        media_type=audio.MEDIA_TYPES[body.response_format],
        headers=STREAM_HEADERS,
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
    completion, sampling, usage = _Completion(body.model), body.sampling(), Usage()
    if not body.stream:
        async with await _slot(request):
            pieces = state.pipeline.chat(messages, max_tokens, sampling=sampling, usage=usage)
            text = await run_in_threadpool(lambda: "".join(pieces))
        return JSONResponse(_json(completion.whole(text, usage)))
    cancel = threading.Event()
    slot, pieces = await _started(
        request, lambda: state.pipeline.chat(messages, max_tokens, cancel, sampling, usage)
    )
    with_usage = body.stream_options is not None and body.stream_options.include_usage
    events = completion.events(pieces, usage, with_usage)
    return _event_stream(request, _released(events, slot, cancel))


class _Completion:
    """One chat completion, whole or as stream chunks, in the `openai` package's types."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.model = model
        self.created = int(time.time())

    def whole(self, text: str, usage: Usage) -> ChatCompletion:
        """A `chat.completion` object."""
        message = ChatCompletionMessage(role="assistant", content=text)
        choice = Choice(index=0, message=message, finish_reason=usage.finish_reason, logprobs=None)
        return ChatCompletion(
            id=self.id, object="chat.completion", created=self.created, model=self.model,
            choices=[choice], usage=_usage(usage),
        )  # fmt: skip

    def events(
        self, pieces: Iterator[str], usage: Usage, with_usage: bool
    ) -> Iterator[ServerSentEvent]:
        """Server-sent `chat.completion.chunk` events, then [DONE]; `with_usage`, a last chunk
        with the token counts (OpenAI's `include_usage`). An error mid-stream is sent as one.

        `usage` is filled in by the model as `pieces` ends."""
        yield _event(_json(self._chunk(ChoiceDelta(role="assistant", content=""))))
        try:
            for piece in pieces:
                if piece:
                    yield _event(_json(self._chunk(ChoiceDelta(content=piece))))
        except VoxloopError as err:
            status, code = _status(err)
            yield _event(error_body(status, str(err), code))
            return
        except Exception:  # a bug: end the stream with an error the client can show
            log.exception("The chat completion failed")
            yield _event(error_body(500, INTERNAL_ERROR, "internal_error"))
            return
        yield _event(_json(self._chunk(ChoiceDelta(), usage.finish_reason)))
        if with_usage and (counts := _usage(usage)) is not None:
            yield _event(_json(self._usage_chunk(counts)))
        yield ServerSentEvent(SSE_DONE, sep=SSE_SEPARATOR)

    def _chunk(
        self, delta: ChoiceDelta, finish_reason: Literal["stop", "length"] | None = None
    ) -> ChatCompletionChunk:
        choice = ChunkChoice(index=0, delta=delta, finish_reason=finish_reason, logprobs=None)
        return ChatCompletionChunk(
            id=self.id, object="chat.completion.chunk", created=self.created, model=self.model,
            choices=[choice],
        )  # fmt: skip

    def _usage_chunk(self, usage: CompletionUsage) -> ChatCompletionChunk:
        """The last chunk of a stream with `include_usage`: no choices, the token counts."""
        return ChatCompletionChunk(
            id=self.id, object="chat.completion.chunk", created=self.created, model=self.model,
            choices=[], usage=usage,
        )  # fmt: skip


def _usage(usage: Usage) -> CompletionUsage | None:
    """The token counts in OpenAI's type; None where the model did not tell them."""
    if usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
    )


def _json(model: BaseModel) -> dict[str, Any]:
    """An `openai` object as JSON, with only the fields voxloop set (as it always sent them)."""
    return model.model_dump(mode="json", exclude_unset=True)


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
    return _event_stream(request, _released(stream, slot, cancel))


def _turn_events(events: Iterator[Any]) -> Iterator[ServerSentEvent]:
    """The turn's events as server-sent JSON: transcript, reply, audio, done (or error)."""
    try:
        for event in events:
            if isinstance(event, Heard):
                yield _event({"type": "transcript", "text": event.text, "language": event.language})
            elif isinstance(event, ReplyText):
                yield _event({"type": "reply", "delta": event.delta})
            elif isinstance(event, Speech):
                pcm = base64.b64encode(event.chunk.pcm.astype("<i2").tobytes()).decode()
                rate = event.chunk.sample_rate
                yield _event({"type": "audio", "sample_rate": rate, "pcm_s16le": pcm})
            elif isinstance(event, Done):
                turn = event.turn
                yield _event(
                    {
                        "type": "done", "transcript": turn.user_text, "reply": turn.heard_reply,
                        "outcome": turn.outcome, "timings_ms": turn.timings_ms,
                        "skill": turn.skill,
                    }
                )  # fmt: skip
    except VoxloopError as err:
        yield _event({"type": "error", "message": str(err), "code": _status(err)[1]})
    except Exception:  # a bug: the client still gets an ending it can show, the log the trace
        log.exception("The turn failed")
        yield _event({"type": "error", "message": INTERNAL_ERROR, "code": "internal_error"})


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
async def alert_events(request: Request, session: str) -> EventSourceResponse:
    """The session's alerts (a timer or reminder going off) as server-sent events, each with
    its spoken audio; a comment line keeps the connection alive on long waits."""
    door = _state(request).alerts
    if door is None:
        raise ApiError(404, "This server does not announce timers.", "not_found")
    events = door.subscribe(session)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            # Tells the client it is subscribed: an alert from now on reaches it.
            yield ServerSentEvent(comment="listening", sep=SSE_SEPARATOR)
            while True:  # until the client leaves: the response then cancels this generator
                try:
                    event = await run_in_threadpool(events.get, True, EVENT_POLL_SECONDS)
                except queue.Empty:
                    continue
                yield _event(event)
        finally:
            door.unsubscribe(session, events)

    return _event_stream(request, stream())


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


def _event(data: dict[str, Any]) -> ServerSentEvent:
    """One server-sent event whose data is `data` as JSON."""
    return ServerSentEvent(json.dumps(data, ensure_ascii=False), sep=SSE_SEPARATOR)


def _event_stream(request: Request, events: AsyncIterator[ServerSentEvent]) -> EventSourceResponse:
    """Server-sent events as they come, with a keep-alive comment on long waits and the
    headers that keep proxies from buffering them."""
    ping = _state(request).pipeline.settings.server.keep_alive_seconds
    return EventSourceResponse(events, headers=STREAM_HEADERS, ping=ping, sep=SSE_SEPARATOR)


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
