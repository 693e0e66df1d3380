"""The record button, transcribed while the person speaks.

While the page's record button records, the page also sends the microphone over its
WebSocket ({"type": "record", "on": true}, 16 kHz int16 frames, then "on": false). Each
recording is fed to a streaming transcriber in a thread of its own, which sends the live
transcript to the page; when the recording stops its transcript is ready a few tens of
milliseconds later, and the turn handler takes it instead of transcribing the upload again.
Meanwhile the language model evaluates the prompt with the words heard so far, so the turn
finds most of its prompt evaluated already.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import numpy as np

from voxloop.audio import MS_PER_SECOND, SAMPLE_RATE, from_int16
from voxloop.config import Settings
from voxloop.conversation.primer import Primer
from voxloop.live import LiveSessions
from voxloop.pipeline import Pipeline
from voxloop.stt import PartialTranscriber, Transcript, get_transcriber
from voxloop.turns import TurnRequest

log = logging.getLogger("voxloop.recording")
# A turn waits this long for a stopped recording's last words (they take tens of ms).
RESULT_WAIT_SECONDS = 2.0
# The page's stream and Gradio's recording start and stop a little apart; a longer mismatch
# means they are not the same recording.
LENGTH_TOLERANCE_SECONDS = 1.0


class RecordingStream:
    """One recording's microphone frames, transcribed as they arrive (in a worker thread)."""

    def __init__(
        self,
        settings: Settings,
        on_partial: Callable[[str], None],
        prime: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_partial = on_partial
        self._primer = Primer(prime) if prime is not None else None
        self.samples = 0  # fed so far
        self._frames: queue.Queue[bytes | None] = queue.Queue()
        self._ended = threading.Event()  # feeding is over: stopped or cancelled
        self._cancelled = False
        self._done = threading.Event()
        self._transcript: Transcript | None = None
        self._thread = threading.Thread(target=self._work, name="voxloop-recording", daemon=True)
        self._thread.start()

    @property
    def seconds(self) -> float:
        """How much audio the page sent."""
        return self.samples / SAMPLE_RATE

    def feed(self, pcm16: bytes) -> None:
        """Queue microphone audio (int16 mono 16 kHz); returns at once."""
        if not self._ended.is_set():
            self.samples += len(pcm16) // 2
            self._frames.put(pcm16)

    def stop(self) -> None:
        """The recording ended: transcribe what is left and keep the final transcript."""
        if not self._ended.is_set():
            self._ended.set()
            self._frames.put(None)
        if self._primer is not None:  # the turn needs the model now
            self._primer.end()

    def cancel(self) -> None:
        """Drop the recording without a final transcript."""
        self._cancelled = True
        self.stop()

    def transcript(self, wait_seconds: float = RESULT_WAIT_SECONDS) -> Transcript | None:
        """The final transcript of a stopped recording (None: none came in time, or none)."""
        self._done.wait(wait_seconds)
        return self._transcript

    def _work(self) -> None:
        try:
            self._transcribe()
        finally:
            if self._primer is not None:  # the turn needs the model now
                self._primer.end()

    def _transcribe(self) -> None:
        try:
            stream = get_transcriber(self.settings, self.settings.stt.partial_engine).stream()
        except Exception:  # the turn transcribes the upload instead
            log.exception("could not start transcribing the recording")
            self._drain()
            return
        try:
            self._listen(stream)
        except Exception:
            log.exception("transcribing the recording failed")
            stream.close()
        finally:
            self._done.set()

    def _listen(self, stream: PartialTranscriber) -> None:
        """Feed the frames as they come; a live transcript every `partial_every_ms`."""
        every = self.settings.handsfree.partial_every_ms * SAMPLE_RATE // MS_PER_SECOND
        pending: list[bytes] = []
        while True:
            frames, ended = self._waiting_frames()
            pending += frames
            if self._cancelled:
                stream.close()
                return
            if ended:
                if pending:
                    stream.add(_samples(pending))
                self._transcript = stream.finish()
                self.on_partial(self._transcript.text)
                return
            if sum(len(f) for f in pending) // 2 >= every:
                text = stream.add(_samples(pending))
                pending = []
                self.on_partial(text)
                self._prime(text)

    def _prime(self, text: str) -> None:
        if self._primer is not None:
            self._primer.offer(text)

    def _waiting_frames(self) -> tuple[list[bytes], bool]:
        """Every frame queued now (at least one, waiting for it); True once the recording ended.

        Taking them all at once lets a transcriber that fell behind catch up in one call.
        """
        frames: list[bytes] = []
        item = self._frames.get()
        while item is not None:
            frames.append(item)
            try:
                item = self._frames.get_nowait()
            except queue.Empty:
                return frames, False
        return frames, True

    def _drain(self) -> None:
        self._ended.set()
        self._done.set()


def _samples(frames: list[bytes]) -> np.ndarray:
    """int16 little-endian frames -> float32 samples."""
    return from_int16(b"".join(frames))


def start(
    live: LiveSessions, client_id: str, pipeline: Pipeline, system_prompt: str | None = None
) -> None:
    """The page's record button started recording: transcribe its frames as they come, and
    evaluate the prompt of the turn they will start (with `system_prompt`) as words come."""
    session = live.get(client_id)
    if session.recording is not None:
        session.recording.cancel()

    def show(text: str) -> None:
        live.send_json(client_id, {"type": "partial", "text": text})

    def prime(text: str) -> None:
        request = TurnRequest(session=session.session or client_id, system_prompt=system_prompt)
        pipeline.prime_turn(request, text)

    session.recording = RecordingStream(pipeline.settings, show, prime)


def stop(live: LiveSessions, client_id: str) -> None:
    """The record button stopped: the recording waits, finishing, for its turn."""
    session = live.get(client_id)
    recording, session.recording = session.recording, None
    if recording is None:
        return
    recording.stop()
    session.recorded.append(recording)


def feed(live: LiveSessions, client_id: str, pcm16: bytes) -> None:
    """Give microphone frames to the page's recording (dropped when none is recording)."""
    recording = live.get(client_id).recording
    if recording is not None:
        recording.feed(pcm16)


def close(live: LiveSessions, client_id: str) -> None:
    """The page went away: drop its recordings."""
    session = live.get(client_id)
    if session.recording is not None:
        session.recording.cancel()
        session.recording = None
    session.recorded.clear()


def take(live: LiveSessions, client_id: str, seconds: float) -> Transcript | None:
    """The streamed transcript of the page's oldest stopped recording, if it is the recording
    of `seconds` that reached the turn (else None: transcribe the upload)."""
    try:
        recording: RecordingStream = live.get(client_id).recorded.popleft()
    except IndexError:  # another turn took it
        return None
    stt = recording.settings.stt
    if stt.engine != stt.partial_engine:  # the final transcript is the other engine's to make
        return None
    if abs(recording.seconds - seconds) > LENGTH_TOLERANCE_SECONDS:
        log.info(
            "streamed %.1f s, uploaded %.1f s: not the same recording", recording.seconds, seconds
        )
        return None
    transcript = recording.transcript()
    if transcript is None or not transcript.text.strip():
        return None
    return transcript
