"""The OpenAI Realtime API at `/v1/realtime`: a spoken conversation over a WebSocket.

A door on the conversation engine (conversation/), like the page's hands-free socket: client
events (`session.update`, `input_audio_buffer.*`, `conversation.item.*`, `response.*`) go in,
the engine's events come out as the API's server events in their GA names and order. With
server VAD the engine finds the turns, prepares answers and lets the person interrupt; without
it the client commits the audio and asks for a response itself. Anything voxloop cannot do is an
`error` event, and the connection goes on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from voxloop import audio
from voxloop.config import Settings
from voxloop.conversation import (
    Conversation,
    Event,
    Failed,
    Options,
    ReplyAudio,
    ReplyDone,
    ReplyInterrupted,
    ReplyStarted,
    ReplyWritten,
    SpeechStopped,
    StateChanged,
    TranscriptUpdated,
)
from voxloop.errors import VoxloopError
from voxloop.guard import POLICY_VIOLATION, ApiError, check_api_key
from voxloop.pipeline import Pipeline

log = logging.getLogger("voxloop.realtime")
PCM = "audio/pcm"
DEFAULT_RATE = audio.PCM_SAMPLE_RATE  # the API's audio/pcm rate
RATES = (audio.SAMPLE_RATE, audio.PCM_SAMPLE_RATE)  # accepted for audio/pcm, in and out
MODEL = "voxloop"
# semantic_vad: the longest silence when the end-of-turn model hears an unfinished sentence.
EAGERNESS_WAIT_MS = {"low": 3000, "medium": 1500, "auto": 1500, "high": 800}


@dataclass
class SessionConfig:
    """What the client chose with `session.update`."""

    instructions: str | None = None
    voice: str | None = None
    speed: float | None = None
    input_rate: int = DEFAULT_RATE
    output_rate: int = DEFAULT_RATE
    server_vad: bool = True
    eagerness: str | None = None  # semantic_vad's: the end-of-turn model decides
    silence_ms: int | None = None
    prefix_padding_ms: int | None = None
    threshold: float | None = None
    transcribe_input: bool = True
    memory_session: str | None = None  # voxloop.session: whose memory the conversation uses

    def describe(self, settings: Settings) -> dict[str, Any]:
        """The session object of `session.created` / `session.updated`."""
        vad = settings.vad
        detection: dict[str, Any] = {
            "type": "server_vad",
            "silence_duration_ms": self.silence_ms or vad.silence_ms,
            "prefix_padding_ms": self.prefix_padding_ms or vad.pad_ms,
            "threshold": self.threshold or vad.threshold,
            "create_response": True,
            "interrupt_response": True,
        }
        if self.eagerness is not None:
            detection = {"type": "semantic_vad", "eagerness": self.eagerness,
                         "create_response": True, "interrupt_response": True}  # fmt: skip
        transcription = {"model": settings.stt.engine} if self.transcribe_input else None
        return {
            "type": "realtime",
            "object": "realtime.session",
            "model": MODEL,
            "output_modalities": ["audio"],
            "instructions": self.instructions or settings.system_prompt,
            "audio": {
                "input": {
                    "format": {"type": PCM, "rate": self.input_rate},
                    "transcription": transcription,
                    "turn_detection": detection if self.server_vad else None,
                },
                "output": {
                    "format": {"type": PCM, "rate": self.output_rate},
                    "voice": self.voice or settings.tts.voice,
                    "speed": self.speed or settings.tts.speed,
                },
            },
            "voxloop": {"session": self.memory_session},
        }


class ClientError(Exception):
    """A client event voxloop cannot take: sent back as an `error` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Response:
    """The response being given: its ids and what it said so far."""

    id: str
    item_id: str
    turn: int
    transcript: str = ""
    status: str = "in_progress"


@dataclass
class Ids:
    """Ids of events, items and responses, unique in the connection."""

    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def new(self, prefix: str) -> str:
        """A fresh id such as 'item_7'."""
        return f"{prefix}_{next(self.counter)}"


class RealtimeSession:
    """One client's Realtime connection."""

    def __init__(self, socket: WebSocket, pipeline: Pipeline) -> None:
        self.socket = socket
        self.pipeline = pipeline
        self.settings = pipeline.settings
        self.config = SessionConfig()
        self.ids = Ids()
        self.loop = asyncio.get_running_loop()
        self.engine_events: asyncio.Queue[Event] = asyncio.Queue()
        self.conversation = self._conversation()
        self.user_item: str | None = None  # the user message being spoken or committed
        self.last_item: str | None = None
        self.pending_text: str | None = None  # a committed or typed user message to answer
        self.response: Response | None = None
        # A response.create accepted, its answer not started yet (the engine says so from
        # another thread, so a second response.create can come first).
        self.requested = False
        self.responses: dict[int, Response] = {}  # by the engine's turn number
        self.buffer: list[np.ndarray] = []  # committed by the client when there is no VAD
        self.audio_ms = 0.0  # audio received so far
        self.partial = ""

    # ---- the connection

    async def run(self) -> None:
        """Serve the connection until the client leaves."""
        await self.send("session.created", session=self.config.describe(self.settings))
        forward = asyncio.create_task(self._forward_engine_events())
        try:
            while True:
                await self._handle(await self.socket.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            forward.cancel()
            self.conversation.close()

    async def send(self, kind: str, **fields: Any) -> None:
        """Send one server event."""
        event = {"type": kind, "event_id": self.ids.new("event"), **fields}
        await self.socket.send_text(json.dumps(event))

    async def error(self, code: str, message: str, client_event: str | None = None) -> None:
        """Send an `error` event; the connection goes on."""
        error = {"type": "invalid_request_error", "code": code, "message": message}
        await self.send("error", error={**error, "param": None, "event_id": client_event})

    async def _handle(self, text: str) -> None:
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise ClientError("invalid_json", "Each client event must be a JSON object.")
        except json.JSONDecodeError:
            await self.error("invalid_json", "That is not JSON: send one JSON object per message.")
            return
        except ClientError as err:
            await self.error(err.code, str(err))
            return
        kind, event_id = message.get("type"), message.get("event_id")
        handler = CLIENT_EVENTS.get(str(kind))
        try:
            if handler is None:
                raise ClientError("unknown_event", f"voxloop does not know the event '{kind}'.")
            await handler(self, message)
        except ClientError as err:
            await self.error(err.code, str(err), event_id)
        except VoxloopError as err:
            await self.error("invalid_request", str(err), event_id)

    # ---- client events

    async def session_update(self, message: dict[str, Any]) -> None:
        """`session.update`: instructions, voice, speed, formats, turn detection, memory."""
        session = _object(message.get("session"), "session")
        config = _updated(self.config, session, self.settings)
        vad_changed = _vad_of(config) != _vad_of(self.config)
        self.config = config
        self.conversation.options = self._options()
        if vad_changed:  # a new turn detector: a new engine, with the conversation so far
            history = self.conversation.history
            self.conversation.close()
            self.conversation = self._conversation()
            self.conversation.history = history
        await self.send("session.updated", session=self.config.describe(self.settings))

    async def append_audio(self, message: dict[str, Any]) -> None:
        """`input_audio_buffer.append`: base64 PCM16 at the session's input rate."""
        samples = _pcm16(message.get("audio"), self.settings.audio.max_megabytes)
        samples = audio.resample(samples, self.config.input_rate, audio.SAMPLE_RATE)
        self.audio_ms += len(samples) * audio.MS_PER_SECOND / audio.SAMPLE_RATE
        if self.config.server_vad:
            self.conversation.feed(samples)
            return
        buffered = sum(len(b) for b in self.buffer) + len(samples)
        if buffered > self.settings.audio.max_seconds * audio.SAMPLE_RATE:
            raise ClientError(
                "input_audio_buffer_too_long",
                f"The audio buffer is over {self.settings.audio.max_seconds:g} s: commit it "
                "sooner. This part was dropped.",
            )
        self.buffer.append(samples)

    async def commit_audio(self, message: dict[str, Any]) -> None:
        """`input_audio_buffer.commit` (without server VAD): the buffer becomes a user message."""
        if self.config.server_vad:
            raise ClientError(
                "input_audio_buffer_commit_with_vad",
                "The server's turn detection commits the audio itself; turn it off "
                "(turn_detection: null) to commit by hand.",
            )
        if not self.buffer:
            raise ClientError("input_audio_buffer_commit_empty", "The audio buffer is empty.")
        samples, self.buffer = np.concatenate(self.buffer), []
        item = self.ids.new("item")
        await self._user_item_committed(item)
        transcript = await asyncio.to_thread(self.pipeline.transcribe, samples)
        await self._user_item_heard(item, transcript.text.strip())
        self.pending_text = transcript.text.strip()

    async def clear_audio(self, message: dict[str, Any]) -> None:
        """`input_audio_buffer.clear`."""
        self.buffer = []
        await self.send("input_audio_buffer.cleared")

    async def create_item(self, message: dict[str, Any]) -> None:
        """`conversation.item.create`: a typed user message."""
        item = _object(message.get("item"), "item")
        text = _user_text(item)
        item_id = str(item.get("id") or self.ids.new("item"))
        added = _user_message(item_id, text=text, status="completed")
        await self.send("conversation.item.added", previous_item_id=self.last_item, item=added)
        await self.send("conversation.item.done", previous_item_id=self.last_item, item=added)
        self.last_item, self.pending_text = item_id, text

    async def create_response(self, message: dict[str, Any]) -> None:
        """`response.create`: answer the last user message."""
        if self.response is not None or (self.requested and self.conversation.answering()):
            raise ClientError(
                "conversation_already_has_active_response",
                "A response is already being given: cancel it first (response.cancel).",
            )
        if not self.pending_text:
            raise ClientError(
                "no_user_message", "There is nothing to answer yet: add a user message first."
            )
        text, self.pending_text = self.pending_text, None
        self.requested = True
        await asyncio.to_thread(self.conversation.respond, text)

    async def cancel_response(self, message: dict[str, Any]) -> None:
        """`response.cancel`: stop the response being given."""
        if self.response is None:
            raise ClientError("response_cancel_not_active", "No response is being given.")
        self.conversation.cancel()

    async def truncate_item(self, message: dict[str, Any]) -> None:
        """`conversation.item.truncate`: the person heard only `audio_end_ms` of the answer."""
        item_id, end_ms = message.get("item_id"), message.get("audio_end_ms")
        response = next((r for r in self.responses.values() if r.item_id == item_id), None)
        if response is None or not isinstance(end_ms, int | float) or end_ms < 0:
            raise ClientError(
                "invalid_truncate",
                "Give the item_id of an answer and audio_end_ms, how much of it was played.",
            )
        heard = self.conversation.truncate(response.turn, end_ms / audio.MS_PER_SECOND)
        if heard is None:
            raise ClientError("invalid_truncate", "Only the last answer can be truncated.")
        response.transcript = heard
        await self.send(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=0,
            audio_end_ms=int(end_ms),
        )

    # ---- the engine's events

    def _conversation(self) -> Conversation:
        vad = self.settings.vad.model_copy(update=_vad_of(self.config))
        return Conversation(
            self.pipeline,
            self._options(),
            self._from_engine,
            session=lambda: self.config.memory_session,
            vad=vad,
        )

    def _from_engine(self, event: Event) -> None:
        """Called in the engine's threads: hand the event to the connection's loop."""
        self.loop.call_soon_threadsafe(self.engine_events.put_nowait, event)

    def _options(self) -> Options:
        config = self.config
        return Options(voice=config.voice, speed=config.speed, system_prompt=config.instructions)

    async def _forward_engine_events(self) -> None:
        while True:
            event = await self.engine_events.get()
            try:
                await self._translate(event)
            except Exception:  # the client went away, or a bug: the log has it
                log.exception("could not send a Realtime event")

    async def _translate(self, event: Event) -> None:
        if event == StateChanged("hearing"):
            self.user_item, self.partial = self.ids.new("item"), ""
            await self.send(
                "input_audio_buffer.speech_started",
                audio_start_ms=int(self.audio_ms),
                item_id=self.user_item,
            )
        elif isinstance(event, SpeechStopped) and self.user_item is not None:
            await self.send(
                "input_audio_buffer.speech_stopped",
                audio_end_ms=int(self.audio_ms),
                item_id=self.user_item,
            )
            await self._user_item_committed(self.user_item)
        elif isinstance(event, TranscriptUpdated):
            await self._transcript(event)
        elif isinstance(event, ReplyStarted):
            await self._response_started(event)
        elif isinstance(event, ReplyWritten):
            await self._transcript_delta(event.turn, event.delta)
        elif isinstance(event, ReplyAudio):
            await self._audio_delta(event)
        elif isinstance(event, ReplyDone):
            await self._response_done(event)
        elif isinstance(event, ReplyInterrupted) and event.turn in self.responses:
            self.responses[event.turn].transcript = event.heard
        elif isinstance(event, Failed):
            await self._failed(event)

    async def _user_item_committed(self, item_id: str) -> None:
        await self.send(
            "input_audio_buffer.committed", previous_item_id=self.last_item, item_id=item_id
        )
        added = _user_message(item_id, status="in_progress")
        await self.send("conversation.item.added", previous_item_id=self.last_item, item=added)
        self.last_item = item_id

    async def _transcript(self, event: TranscriptUpdated) -> None:
        item_id = self.user_item
        if item_id is None or not self.config.transcribe_input:
            return
        if not event.final:
            if event.text.startswith(self.partial) and event.text != self.partial:
                delta = event.text[len(self.partial) :]
                await self.send(
                    "conversation.item.input_audio_transcription.delta",
                    item_id=item_id,
                    content_index=0,
                    delta=delta,
                )
            self.partial = event.text
            return
        await self._user_item_heard(item_id, event.text)
        self.user_item = None

    async def _user_item_heard(self, item_id: str, text: str) -> None:
        if self.config.transcribe_input:
            await self.send(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                content_index=0,
                transcript=text,
                usage={"type": "duration", "seconds": 0},
            )
        done = _user_message(item_id, transcript=text, status="completed")
        await self.send("conversation.item.done", previous_item_id=None, item=done)

    async def _response_started(self, event: ReplyStarted) -> None:
        response = Response(self.ids.new("resp"), self.ids.new("item"), event.turn)
        self.response = self.responses[event.turn] = response
        self.requested = False
        await self.send("response.created", response=self._response_object(response, []))
        item = _assistant_message(response.item_id, "", "in_progress")
        await self.send("response.output_item.added", response_id=response.id, output_index=0,
                        item=item)  # fmt: skip
        await self.send("conversation.item.added", previous_item_id=self.last_item, item=item)
        self.last_item = response.item_id
        await self.send(
            "response.content_part.added", **_part_of(response),
            part={"type": "audio", "transcript": ""},
        )  # fmt: skip
        if event.written:
            await self._transcript_delta(event.turn, event.written)

    async def _transcript_delta(self, turn: int, delta: str) -> None:
        response = self.responses.get(turn)
        if response is None or response.status != "in_progress":
            return
        response.transcript += delta
        await self.send("response.output_audio_transcript.delta", **_part_of(response), delta=delta)

    async def _audio_delta(self, event: ReplyAudio) -> None:
        response = self.responses.get(event.turn)
        if response is None or response.status != "in_progress":
            return
        pcm = audio.resample(
            audio.from_int16(event.chunk.pcm),
            event.chunk.sample_rate,
            self.config.output_rate,
        )
        encoded = base64.b64encode(audio.to_int16(pcm).astype("<i2").tobytes()).decode()
        await self.send("response.output_audio.delta", **_part_of(response), delta=encoded)

    async def _response_done(self, event: ReplyDone) -> None:
        response = self.responses.get(event.turn)
        if response is None:
            return
        response.status = "cancelled" if event.record.cancelled else "completed"
        if not event.record.cancelled:
            response.transcript = event.record.reply
        await self._finish(response)

    async def _failed(self, event: Failed) -> None:
        await self.error("response_failed", event.message)
        self.requested = False
        if self.response is not None:
            self.response.status = "failed"
            await self._finish(self.response)

    async def _finish(self, response: Response) -> None:
        part = _part_of(response)
        await self.send("response.output_audio.done", **part)
        await self.send(
            "response.output_audio_transcript.done", **part, transcript=response.transcript
        )
        await self.send(
            "response.content_part.done", **part,
            part={"type": "audio", "transcript": response.transcript},
        )  # fmt: skip
        item = _assistant_message(response.item_id, response.transcript, "completed")
        await self.send("response.output_item.done", response_id=response.id, output_index=0,
                        item=item)  # fmt: skip
        await self.send("conversation.item.done", previous_item_id=None, item=item)
        await self.send("response.done", response=self._response_object(response, [item]))
        if self.response is response:
            self.response = None

    def _response_object(self, response: Response, output: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": response.id,
            "object": "realtime.response",
            "status": response.status,
            "status_details": None,
            "output": output,
            "output_modalities": ["audio"],
            "audio": {"output": {"format": {"type": PCM, "rate": self.config.output_rate}}},
            "conversation_id": "conversation",
            "usage": None,
        }


CLIENT_EVENTS = {
    "session.update": RealtimeSession.session_update,
    "input_audio_buffer.append": RealtimeSession.append_audio,
    "input_audio_buffer.commit": RealtimeSession.commit_audio,
    "input_audio_buffer.clear": RealtimeSession.clear_audio,
    "conversation.item.create": RealtimeSession.create_item,
    "response.create": RealtimeSession.create_response,
    "response.cancel": RealtimeSession.cancel_response,
    "conversation.item.truncate": RealtimeSession.truncate_item,
}


async def realtime_socket(socket: WebSocket) -> None:
    """`/v1/realtime`: the OpenAI Realtime API (the query's `model` is accepted and ignored)."""
    pipeline: Pipeline = socket.app.state.pipeline
    try:
        check_api_key(socket.headers.get("authorization"), pipeline.settings.server.api_key)
    except ApiError as err:
        await socket.close(code=POLICY_VIOLATION, reason=str(err)[:120])
        return
    await socket.accept()
    await RealtimeSession(socket, pipeline).run()


# ---- the API's objects


def _part_of(response: Response) -> dict[str, Any]:
    return {"response_id": response.id, "item_id": response.item_id, "output_index": 0,
            "content_index": 0}  # fmt: skip


def _user_message(
    item_id: str, text: str | None = None, transcript: str | None = None, status: str = ""
) -> dict[str, Any]:
    content = (
        {"type": "input_text", "text": text}
        if text is not None
        else {"type": "input_audio", "transcript": transcript}
    )
    return {"id": item_id, "type": "message", "object": "realtime.item", "role": "user",
            "status": status, "content": [content]}  # fmt: skip


def _assistant_message(item_id: str, transcript: str, status: str) -> dict[str, Any]:
    content = {"type": "output_audio", "transcript": transcript}
    return {"id": item_id, "type": "message", "object": "realtime.item", "role": "assistant",
            "status": status, "content": [content]}  # fmt: skip


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ClientError("invalid_value", f"'{name}' must be a JSON object.")
    return value


def _user_text(item: dict[str, Any]) -> str:
    """The text of a typed user message item."""
    if item.get("type", "message") != "message" or item.get("role") != "user":
        raise ClientError("invalid_item", "voxloop takes user messages only (role 'user').")
    texts = [
        str(part.get("text", ""))
        for part in item.get("content") or []
        if isinstance(part, dict) and part.get("type") in ("input_text", "text")
    ]
    if not "".join(texts).strip():
        raise ClientError("invalid_item", "The message has no text: give an input_text part.")
    return " ".join(texts).strip()


def _pcm16(encoded: Any, max_megabytes: float) -> np.ndarray:
    """Base64 little-endian 16-bit PCM as float32 samples."""
    if not isinstance(encoded, str):
        raise ClientError("invalid_audio", "'audio' must be base64-encoded 16-bit PCM.")
    if len(encoded) * 3 / 4 > max_megabytes * audio.BYTES_PER_MEGABYTE:
        raise ClientError("audio_too_large", f"One append is over {max_megabytes:g} MB.")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError("invalid_base64", "'audio' is not valid base64.") from None
    if len(data) % 2:
        raise ClientError("invalid_audio", "16-bit PCM has an even number of bytes.")
    return audio.from_int16(data)


def _format_rate(value: Any) -> int:
    """The rate of an audio format object, if voxloop takes it."""
    audio_format = _object(value, "format")
    kind, rate = audio_format.get("type"), audio_format.get("rate", DEFAULT_RATE)
    if kind != PCM or rate not in RATES:
        raise ClientError(
            "unsupported_audio_format",
            f"voxloop takes audio/pcm at {' or '.join(map(str, RATES))} Hz, not {kind} at {rate}.",
        )
    return int(rate)


def _updated(config: SessionConfig, session: dict[str, Any], settings: Settings) -> SessionConfig:
    """`config` with what `session` (a session.update's object) changes."""
    changes: dict[str, Any] = {}
    if "instructions" in session:
        changes["instructions"] = session["instructions"] or None
    audio_config = session.get("audio") or {}
    input_config, output_config = audio_config.get("input") or {}, audio_config.get("output") or {}
    if "format" in input_config:
        changes["input_rate"] = _format_rate(input_config["format"])
    if "format" in output_config:
        changes["output_rate"] = _format_rate(output_config["format"])
    if "voice" in output_config:
        changes["voice"] = _voice(output_config["voice"], settings)
    if "speed" in output_config:
        changes["speed"] = float(output_config["speed"])
    if "transcription" in input_config:
        changes["transcribe_input"] = input_config["transcription"] is not None
    if "turn_detection" in input_config:
        changes.update(_turn_detection(input_config["turn_detection"]))
    voxloop = session.get("voxloop") or {}
    if "session" in voxloop:
        changes["memory_session"] = voxloop["session"] or None
    return replace(config, **changes)


def _voice(name: Any, settings: Settings) -> str:
    from voxloop.tts import find_voice

    try:
        find_voice(str(name))
    except VoxloopError as err:
        raise ClientError("unknown_voice", str(err)) from None
    return str(name)


def _turn_detection(detection: Any) -> dict[str, Any]:
    if detection is None:
        return {"server_vad": False}
    detection = _object(detection, "turn_detection")
    kind = detection.get("type", "server_vad")
    if kind == "semantic_vad":
        eagerness = detection.get("eagerness", "auto")
        if eagerness not in EAGERNESS_WAIT_MS:
            raise ClientError(
                "invalid_value", f"eagerness is one of {', '.join(EAGERNESS_WAIT_MS)}."
            )
        return {"server_vad": True, "eagerness": eagerness}
    if kind != "server_vad":
        raise ClientError(
            "unsupported_turn_detection",
            "voxloop detects turns with server_vad or semantic_vad, or none.",
        )
    return {
        "server_vad": True,
        "eagerness": None,
        "silence_ms": detection.get("silence_duration_ms"),
        "prefix_padding_ms": detection.get("prefix_padding_ms"),
        "threshold": detection.get("threshold"),
    }


def _vad_of(config: SessionConfig) -> dict[str, Any]:
    """The turn detection settings the session asked for (VADSettings fields)."""
    asked: dict[str, Any] = {
        "silence_ms": config.silence_ms,
        "pad_ms": config.prefix_padding_ms,
        "threshold": config.threshold,
    }
    if config.eagerness is not None:  # the end-of-turn model, waiting as eager as asked
        asked |= {"end_of_turn": "words", "turn_wait_ms": EAGERNESS_WAIT_MS[config.eagerness]}
    return {name: value for name, value in asked.items() if value is not None}
