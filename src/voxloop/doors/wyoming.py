"""`voxloop wyoming`: the Wyoming protocol (Home Assistant's voice services) over TCP.

One server offers three programs on voxloop's one pipeline: speech to text (`transcribe` and
audio in -> `transcript`), text to speech (`synthesize`, or the streaming `synthesize-start/
chunk/stop`, -> audio streamed as it is made) and the conversation (`transcript` in ->
`handled` out, a turn with skills and memory). Heavy work runs in threads, so the event loop
keeps serving every connection; bad input gets an `error` event and the connection goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlparse

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk as WyomingChunk
from wyoming.audio import AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    HandleModel,
    HandleProgram,
    Info,
    SelectProgram,
    TtsProgram,
    TtsVoice,
)
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler, AsyncServer
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from voxloop import __version__, tts
from voxloop.audio import AudioChunk, to_mono_16k
from voxloop.config import Settings
from voxloop.errors import AudioTooLong, BadAudio, BadText, ConfigError, NoSpeech, VoxloopError
from voxloop.guard import is_loopback
from voxloop.pipeline import Pipeline
from voxloop.text import SpeechChunker
from voxloop.turns import Done, TurnRequest

if TYPE_CHECKING:
    from voxloop import stt

log = logging.getLogger("voxloop.wyoming")
T = TypeVar("T")

# Sample widths (bytes) voxloop reads, as little-endian signed integers.
SAMPLE_TYPES = {2: "<i2", 4: "<i4"}
OUT_WIDTH, OUT_CHANNELS = 2, 1  # what voxloop's voices make: 16-bit mono
EMPTY_AUDIO = "empty-audio"  # the error code of audio with no samples
# Error codes by kind of refusal, the most specific first.
ERROR_CODES: list[tuple[type[VoxloopError], str]] = [
    (NoSpeech, "no-speech"),
    (AudioTooLong, "audio-too-long"),
    (BadAudio, "bad-audio"),
    (BadText, "bad-text"),
    (ConfigError, "bad-request"),
    (VoxloopError, "failed"),
]
SEND_SAMPLES = 1024  # samples per audio-chunk sent: small, so players start at once
# Transcripts whose other readings are kept for the conversation that may follow: Home
# Assistant sends the words it was told back to `handle`, on another connection.
KEPT_TRANSCRIPTS = 8
PROGRAM = Attribution(name="voxloop", url="")
ENGINE_SOURCES = {
    "moonshine": "https://github.com/moonshine-ai/moonshine",
    "whisper": "https://github.com/SYSTRAN/faster-whisper",
    "piper": "https://github.com/rhasspy/piper",
    "kokoro": "https://github.com/thewh1teagle/kokoro-onnx",
    "espeak": "https://github.com/espeak-ng/espeak-ng",
}


# --- what the server offers -------------------------------------------------------------------


def stt_languages() -> list[str]:
    """Every language code voxloop's speech to text accepts (English first)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # stt.check_language's list too

    return ["en", *sorted(code for code in _LANGUAGE_CODES if code != "en")]


def describe(settings: Settings) -> Info:
    """The `info` answer: an asr, a tts and a handle program."""
    languages = stt_languages()
    engine = settings.stt.engine
    asr = AsrProgram(
        name="voxloop-stt", attribution=PROGRAM, installed=True, version=__version__,
        description="voxloop speech to text (offline)",
        models=[AsrModel(
            name=engine, attribution=_engine(engine), installed=True, version=None,
            description=f"voxloop '{engine}' engine; other languages go to Whisper",
            languages=languages,
        )],
    )  # fmt: skip
    voices = [
        TtsVoice(
            name=voice.id, attribution=_engine(voice.engine), installed=True, version=None,
            description=f"{voice.description} ({voice.gender})", languages=[voice.language],
        )
        for voice in tts.catalog()
    ]  # fmt: skip
    speech = TtsProgram(
        name="voxloop-tts", attribution=PROGRAM, installed=True, version=__version__,
        description="voxloop text to speech (offline)", voices=voices,
        supports_synthesize_streaming=True,
    )  # fmt: skip
    conversation = HandleProgram(
        name="voxloop", attribution=PROGRAM, installed=True, version=__version__,
        description="voxloop: a local, private assistant with memory",
        models=[HandleModel(
            name=settings.llm.model, attribution=PROGRAM, installed=True, version=None,
            description="voxloop's conversation: skills, memory and the language model",
            languages=languages,
        )],
    )  # fmt: skip
    return Info(asr=[asr], tts=[speech], handle=[conversation])


def _engine(name: str) -> Attribution:
    return Attribution(name=name, url=ENGINE_SOURCES.get(name, ""))


# --- one connection ---------------------------------------------------------------------------


class WyomingError(VoxloopError):
    """A request this door cannot serve; `code` is the Wyoming error code sent with it."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Recording:
    """Audio arriving for a transcription, in the format its audio-start announced."""

    rate: int
    width: int
    channels: int
    max_bytes: int
    data: bytearray = field(default_factory=bytearray)
    refused: bool = False  # an error was sent: the rest of this audio is dropped


@dataclass
class _TextStream:
    """Text arriving for a streamed synthesis (synthesize-start until synthesize-stop)."""

    voice: str
    chunker: SpeechChunker
    refused: bool = False  # the start was refused (error sent): chunks are dropped
    started: bool = False  # audio-start has been sent


class WyomingHandler(AsyncEventHandler):
    """One client's connection: answers its events in order."""

    def __init__(
        self, door: WyomingDoor, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super().__init__(reader, writer)
        self.door, self.pipeline, self.settings = door, door.pipeline, door.pipeline.settings
        self.language: str | None = None  # from the last `transcribe`
        self.recording: _Recording | None = None
        self.stream: _TextStream | None = None

    async def handle_event(self, event: Event) -> bool:
        """Answer one event; any failure becomes an `error` event, and the connection stays."""
        try:
            await self._dispatch(event)
        except VoxloopError as err:
            await self._error(str(err), _error_code(err))
        except ConnectionError:  # the client went away mid-answer: nobody to tell
            return False
        except Exception as err:  # a bug: say so, keep the connection
            log.exception("Wyoming event %s failed", event.type)
            await self._error(f"voxloop failed: {type(err).__name__}: {err}", "internal")
        return True

    async def _dispatch(self, event: Event) -> None:
        kind = event.type
        if Describe.is_type(kind):
            await self.write_event(self.door.info.event())
        elif Ping.is_type(kind):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif SelectProgram.is_type(kind):
            self._select(SelectProgram.from_event(event).name)
        elif Transcribe.is_type(kind):
            self.language = _language(Transcribe.from_event(event).language)
        elif AudioStart.is_type(kind):
            self._start_audio(AudioStart.from_event(event))
        elif WyomingChunk.is_type(kind):
            self._add_audio(WyomingChunk.from_event(event))
        elif AudioStop.is_type(kind):
            await self._transcribe()
        elif Synthesize.is_type(kind):
            await self._synthesize(Synthesize.from_event(event))
        elif SynthesizeStart.is_type(kind):
            self._start_stream(SynthesizeStart.from_event(event).voice)
        elif SynthesizeChunk.is_type(kind):
            await self._stream_text(SynthesizeChunk.from_event(event).text)
        elif SynthesizeStop.is_type(kind):
            await self._stop_stream()
        elif Transcript.is_type(kind):
            await self._handle(Transcript.from_event(event).text)
        else:
            raise WyomingError(
                f"voxloop does not know the event '{kind}'. It answers describe, transcribe "
                "with audio, synthesize (also streamed) and transcript (the conversation).",
                "unknown-event",
            )

    async def _error(self, text: str, code: str) -> None:
        log.info("Wyoming error %s: %s", code, text)
        await self.write_event(Error(text=text, code=code).event())

    def _select(self, name: str) -> None:
        """Accept a program of ours (there is one of each kind); refuse another name."""
        info = self.door.info
        if name not in {program.name for program in [*info.asr, *info.tts, *info.handle]}:
            raise WyomingError(f"No program '{name}' here (see `describe`).", "unknown-program")

    # --- speech to text

    def _start_audio(self, start: AudioStart) -> None:
        self._begin_recording(start.rate, start.width, start.channels)

    def _begin_recording(self, rate: int, width: int, channels: int) -> None:
        """Expect audio in this format; a format voxloop cannot read is refused once."""
        try:
            self.recording = _new_recording(rate, width, channels, self.settings)
        except BadAudio:  # its chunks are dropped until audio-stop: one error, not one a chunk
            self.recording = _Recording(rate, width, channels, max_bytes=0, refused=True)
            raise

    def _add_audio(self, chunk: WyomingChunk) -> None:
        if self.recording is None:  # no audio-start: the first chunk says the format
            self._begin_recording(chunk.rate, chunk.width, chunk.channels)
        recording = self.recording
        assert recording is not None
        if recording.refused:
            return
        if (chunk.rate, chunk.width, chunk.channels) != (
            recording.rate, recording.width, recording.channels,
        ):  # fmt: skip
            recording.refused = True
            raise BadAudio(
                f"An audio chunk changed format mid-stream (to {_format(chunk)}, after "
                f"{_format(recording)}): send one format from audio-start to audio-stop."
            )
        recording.data += chunk.audio
        if len(recording.data) > recording.max_bytes:
            recording.refused = True
            seconds = self.settings.audio.max_seconds
            raise AudioTooLong(f"The audio is over {seconds:.0f} seconds, voxloop's limit.")

    async def _transcribe(self) -> None:
        recording, self.recording = self.recording, None
        language, self.language = self.language, None
        if recording is None:
            raise WyomingError("audio-stop without any audio: nothing to transcribe.", EMPTY_AUDIO)
        if recording.refused:
            return  # its error was sent when it was refused
        samples = _decode(recording)
        try:
            heard = await asyncio.to_thread(self.pipeline.transcribe, samples, None, language)
        except NoSpeech:  # as Home Assistant expects of silence: an empty transcript
            await self.write_event(Transcript(text="", language=language).event())
            return
        self.door.keep(heard)
        await self.write_event(Transcript(text=heard.text, language=heard.language).event())

    # --- text to speech

    async def _synthesize(self, request: Synthesize) -> None:
        if self.stream is not None:  # sent alongside a stream for older servers: said already
            return
        voice = self._voice(request.voice)
        speed = self.settings.tts.speed
        chunks = self.pipeline.speak(request.text, voice, speed)
        started = False
        async for chunk in _in_thread(chunks):
            started = await self._send_audio(chunk, started)
        if not started:
            raise BadText("There is nothing to say: the text has no speakable words.")
        await self.write_event(AudioStop().event())

    def _start_stream(self, voice: SynthesizeVoice | None) -> None:
        chunker = SpeechChunker(first_max_words=self.settings.tts.first_chunk_words)
        try:
            voice_id = self._voice(voice)
        except WyomingError:  # its chunks are dropped; synthesize-stop still ends the stream
            self.stream = _TextStream("", chunker, refused=True)
            raise
        self.stream = _TextStream(voice_id, chunker)

    async def _stream_text(self, text: str) -> None:
        stream = self.stream
        if stream is None:
            raise WyomingError("synthesize-chunk outside synthesize-start/stop.", "no-stream")
        if not stream.refused:
            await self._say(stream.chunker.push(text))

    async def _stop_stream(self) -> None:
        stream = self.stream
        if stream is None:
            raise WyomingError("synthesize-stop without synthesize-start.", "no-stream")
        try:
            if not stream.refused:
                await self._say(stream.chunker.flush())
            if stream.started:
                await self.write_event(AudioStop().event())
        finally:
            self.stream = None
            await self.write_event(SynthesizeStopped().event())

    async def _say(self, pieces: list[str]) -> None:
        """Speak the stream's complete sentences, each chunk sent as it is synthesized."""
        stream = self.stream
        assert stream is not None
        for piece in pieces:
            chunks = tts.synthesize(
                piece, stream.voice, cache_dir=self.settings.cache_dir,
                speed=self.settings.tts.speed,
            )  # fmt: skip
            async for chunk in _in_thread(chunks):
                stream.started = await self._send_audio(chunk, stream.started)

    def _voice(self, wanted: SynthesizeVoice | None) -> str:
        """The voice id asked for: by name, else by language, else the default."""
        if wanted is not None and wanted.name:
            try:
                return tts.find_voice(wanted.name).id
            except ConfigError as err:
                raise WyomingError(str(err), "unknown-voice") from None
        if wanted is not None and wanted.language:
            language = _language(wanted.language) or ""
            found = tts.voice_for_language(language)
            if found is None:
                raise WyomingError(f"No voice speaks '{wanted.language}'.", "unknown-voice")
            return found.id
        return self.settings.tts.voice

    async def _send_audio(self, chunk: AudioChunk, started: bool) -> bool:
        """Send one synthesized chunk (after audio-start, if not sent yet); True: started."""
        rate = chunk.sample_rate
        if not started:
            await self.write_event(AudioStart(rate, OUT_WIDTH, OUT_CHANNELS).event())
        pcm = np.asarray(chunk.pcm, dtype="<i2")
        for at in range(0, len(pcm), SEND_SAMPLES):
            part = pcm[at : at + SEND_SAMPLES].tobytes()
            await self.write_event(WyomingChunk(rate, OUT_WIDTH, OUT_CHANNELS, part).event())
        return True

    # --- the conversation

    async def _handle(self, text: str) -> None:
        if not text.strip():
            await self.write_event(NotHandled(text="I heard nothing to answer.").event())
            return
        request = TurnRequest(text=text, session=self.settings.wyoming.session, speak=False)
        request.readings = self.door.readings_of(text)
        try:
            reply = await asyncio.to_thread(self._turn, request)
        except VoxloopError as err:  # said to the person, as Home Assistant shows a reply
            await self.write_event(NotHandled(text=str(err)).event())
            return
        await self.write_event(Handled(text=reply).event())

    def _turn(self, request: TurnRequest) -> str:
        """Run one turn of the pipeline; its reply text."""
        reply = ""
        for event in self.pipeline.run(request):
            if isinstance(event, Done):
                reply = event.turn.reply.strip()
        return reply


def _error_code(err: VoxloopError) -> str:
    """The Wyoming error code of a refusal: its own, or its kind's."""
    if isinstance(err, WyomingError):
        return err.code
    return next(code for kind, code in ERROR_CODES if isinstance(err, kind))


def _new_recording(rate: int, width: int, channels: int, settings: Settings) -> _Recording:
    """An empty recording in this format, or BadAudio saying which formats work."""
    if width not in SAMPLE_TYPES or rate <= 0 or channels <= 0:
        raise BadAudio(
            f"voxloop cannot read {width}-byte samples at {rate} Hz in {channels} channels: "
            "send 16-bit (width 2) or 32-bit (width 4) PCM, any rate, any channels."
        )
    max_bytes = int(settings.audio.max_seconds * rate * width * channels)
    return _Recording(rate, width, channels, max_bytes)


def _decode(recording: _Recording) -> np.ndarray:
    """The recording as 16 kHz mono float32, as the pipeline wants it."""
    frame = recording.width * recording.channels
    whole = len(recording.data) - len(recording.data) % frame  # a torn last frame is dropped
    if whole == 0:
        raise WyomingError(
            "The audio is empty: no samples between audio-start and audio-stop.", EMPTY_AUDIO
        )
    pcm = np.frombuffer(bytes(recording.data[:whole]), SAMPLE_TYPES[recording.width])
    return to_mono_16k(pcm.reshape(-1, recording.channels), recording.rate)


def _format(audio: WyomingChunk | _Recording) -> str:
    return f"{audio.rate} Hz, {audio.width}-byte samples, {audio.channels} channel(s)"


def _language(code: str | None) -> str | None:
    """An ISO 639-1 code from what Home Assistant sends ('en', 'en-US', 'en_US')."""
    return code.replace("_", "-").split("-")[0].lower() if code else None


async def _in_thread(items: Iterator[T]) -> AsyncIterator[T]:
    """Each item of a blocking iterator, computed in a thread, as soon as it is made."""
    done = object()
    while (item := await asyncio.to_thread(next, items, done)) is not done:
        yield item  # type: ignore[misc]


# --- the server -------------------------------------------------------------------------------


class WyomingDoor:
    """voxloop's Wyoming server: the pipeline, what it offers, and the listening socket."""

    def __init__(self, pipeline: Pipeline, uri: str) -> None:
        self.pipeline, self.uri = pipeline, uri
        self.info = describe(pipeline.settings)
        self._server: AsyncServer | None = None
        self._heard: OrderedDict[str, stt.Readings] = OrderedDict()  # the last transcripts sent

    def keep(self, transcript: stt.Transcript) -> None:
        """Keep the other readings of a transcript sent, for a turn on its words."""
        self._heard[transcript.text.strip()] = transcript.readings
        while len(self._heard) > KEPT_TRANSCRIPTS:
            self._heard.popitem(last=False)

    def readings_of(self, text: str) -> stt.Readings | None:
        """The other readings of the audio `text` was heard from, if voxloop transcribed it."""
        return self._heard.get(text.strip())

    async def start(self) -> None:
        """Listen (a port in use is said at once); connections are served from now on."""
        server = AsyncServer.from_uri(self.uri)
        try:
            await server.start(lambda reader, writer: WyomingHandler(self, reader, writer))
        except OSError as err:
            raise ConfigError(
                f"Cannot listen on {self.uri} ({err.strerror}). Another program may be using "
                "that port: choose another with --uri."
            ) from err
        self._server = server

    async def stop(self) -> None:
        """Stop listening and end every connection."""
        if self._server is not None:
            await self._server.stop()


def check_uri(uri: str, allow_network: bool) -> None:
    """ConfigError unless `uri` is tcp://host:port (or unix://path) on this machine or allowed."""
    parsed = urlparse(uri)
    if parsed.scheme == "unix" and parsed.path:
        return
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme != "tcp" or not parsed.hostname or port is None:
        raise ConfigError(
            f"'{uri}' is not a Wyoming address: give tcp://host:port (e.g. "
            "tcp://127.0.0.1:10300) or unix:///path/to/socket."
        )
    if not is_loopback(parsed.hostname) and not allow_network:
        raise ConfigError(
            f"Refusing to listen on {parsed.hostname}: the Wyoming protocol has no password, so "
            "anyone on the network could use voxloop. Add --allow-network if that is what you "
            "want (e.g. Home Assistant on another machine), or listen on tcp://127.0.0.1:10300."
        )


async def _serve(door: WyomingDoor) -> None:
    await door.start()
    print("Loading models…", flush=True)
    await asyncio.to_thread(door.pipeline.warm_up)
    print(f"voxloop's Wyoming server is ready: {door.uri}", flush=True)
    try:
        await asyncio.Event().wait()  # until interrupted
    finally:
        await door.stop()


def serve(settings: Settings, uri: str | None = None, allow_network: bool = False) -> None:
    """Load the models, then serve the Wyoming protocol until interrupted."""
    from voxloop.memory import Memory

    uri = uri or settings.wyoming.uri
    check_uri(uri, allow_network)
    pipeline = Pipeline(settings, Memory(settings.memory_file, settings.memory))
    asyncio.run(_serve(WyomingDoor(pipeline, uri)))
