"""The record button, transcribed while the person speaks.

While the page's record button records, the page also sends the microphone over its
WebSocket ({"type": "record", "on": true}, 16 kHz int16 frames, then "on": false). Each
recording is fed to a streaming transcriber in a thread of its own, which sends the live
transcript to the page. When the recording stops, its final transcript is made at once from the
streamed audio (by stt.engine, or by finishing the live one when that is the same engine), while
the page is still uploading the file, and the turn handler takes it instead of transcribing the
upload again.
Meanwhile the language model evaluates the prompt with the words heard so far, so the turn
finds most of its prompt evaluated already. With `server.answer_at_stop` the turn itself is
answered from here (a StartedTurn), its reply going to the page's socket, and the turn handler,
called once Gradio has uploaded the file, shows that turn instead of starting one: the answer
to a pause's transcript is prepared in that pause, as hands-free prepares its answers, unheard
until stop; if the person says no more it is heard at stop, else the final transcript is
answered then.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from voxloop.audio import MS_PER_SECOND, SAMPLE_RATE, from_int16
from voxloop.config import Settings
from voxloop.conversation import Options
from voxloop.conversation.primer import Primer
from voxloop.errors import NoSpeech
from voxloop.live import LiveSessions
from voxloop.pipeline import Pipeline
from voxloop.scheduling import Relay
from voxloop.stt import PartialTranscriber, Transcript, get_transcriber
from voxloop.turns import Event, Release, Speech, TurnRequest
from voxloop.vad import TurnDetector

log = logging.getLogger("voxloop.recording")
# A turn waits for a stopped recording's final transcript (Whisper's takes ~0.2 s for a
# question, a live one's tens of ms) rather than transcribe the upload: that would take the
# same engine as long again, after it (a busy CI machine's Whisper once took ~5 s). This long
# at most, should the transcriber hang; then it transcribes the upload.
RESULT_WAIT_SECONDS = 30.0
# The page's stream and Gradio's recording start and stop a little apart; a longer mismatch
# means they are not the same recording.
LENGTH_TOLERANCE_SECONDS = 1.0
TurnRunner = Callable[[TurnRequest, threading.Event], Iterator[Event]]  # Pipeline.run


class RecordingStream:
    """One recording's microphone frames, transcribed as they arrive (in a worker thread)."""

    def __init__(
        self,
        settings: Settings,
        on_partial: Callable[[str], None],
        prime: Callable[[str], None] | None = None,
        final: Callable[[np.ndarray], Transcript] | None = None,
        turn: StartedTurn | None = None,
    ) -> None:
        self.settings = settings
        self.on_partial = on_partial
        self._primer = Primer(prime) if prime is not None else None
        self._final = final  # the final transcript of the whole recording (else the live one's)
        self._recorded: list[bytes] = []  # every frame, for `final`
        self._ahead: Transcript | None = None  # `final` of the recording so far, made in a pause
        self.turn = turn  # answers the recording from here (None: the page's handler does)
        self._pauses = _pause_detector(settings) if final is not None else None
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

    @property
    def long(self) -> bool:
        """Whether the recording is long enough to be summarized from the upload, not answered."""
        return self.seconds >= self.settings.longform.min_seconds

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
        if self.turn is not None:
            self.turn.drop()

    def transcript(self, wait_seconds: float = RESULT_WAIT_SECONDS) -> Transcript | None:
        """The final transcript of a stopped recording (None: none came in time, or no words)."""
        self._done.wait(wait_seconds)
        transcript = self._transcript
        return transcript if transcript is not None and transcript.text.strip() else None

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
        heard = ""  # a live transcript to evaluate once the frames that came meanwhile are in
        while True:
            frames, ended = self._waiting_frames()
            pending += frames
            if self._final is not None:
                self._recorded += frames
                self._transcribe_in_pauses(frames)
            self._prime_unless_silent(heard)
            heard = ""
            if self._cancelled:
                stream.close()
                return
            if ended:
                self._transcript = self._finish(stream, pending)
                if self._transcript is not None:
                    self.on_partial(self._transcript.text)
                return
            # Once the pause's transcript is made, only silence came since: a live partial
            # would say nothing new, and would hold the CPU (and stop) while the prompt is
            # evaluated. The frames wait for the next words, if any.
            if self._ahead is not None:
                continue
            if sum(len(f) for f in pending) // 2 >= every:
                text = stream.add(_samples(pending))
                pending = []
                self.on_partial(text)
                heard = text
                if self._frames.empty():  # none came while it was made: nothing to wait for
                    self._prime_unless_silent(heard)
                    heard = ""

    def _finish(self, stream: PartialTranscriber, pending: list[bytes]) -> Transcript | None:
        """The recording's final transcript (None: no speech in it)."""
        if self._final is None:
            if pending:
                stream.add(_samples(pending))
            return stream.finish()
        stream.close()
        return self._ahead or self._final_so_far()

    def _transcribe_in_pauses(self, frames: list[bytes]) -> None:
        """Once the person has been silent a while after speaking, make the final transcript
        of the recording so far: if they say no more before stop, it is ready at stop."""
        if self._pauses is None:
            return
        kinds = [event.kind for event in self._pauses.feed(_samples(frames))]
        speaking = ("start", "resume")
        if any(kind in speaking for kind in kinds) and self._ahead is not None:
            self._ahead = None  # more words: that transcript is too short, its answer too
            if self.turn is not None:
                self.turn.drop()
        # Only where these frames leave the person in a pause ("pause", or "end" when it is
        # that long): a pause they already spoke past is not worth a transcript.
        paused = bool(kinds) and kinds[-1] not in speaking
        if paused and self._ahead is None and not self.long:
            self._ahead = self._final_so_far()
            if self._ahead is None:
                return
            self.on_partial(self._ahead.text)  # the turn's words, if no more come
            if self.turn is not None:
                self.turn.prepare(self._ahead)
            else:
                self._prime(self._ahead.text)

    def _prime_unless_silent(self, heard: str) -> None:
        """Evaluate the prompt with the live transcript `heard`, unless the frames that came
        while it was made show the person has stopped speaking: the pause's transcript is due
        then, and a prompt evaluated beside it would take the cores from it (each ~2x slower;
        the turn evaluates its own words anyway). Once the pause's transcript is made (and
        primed), it is the turn's own: later live words (other casing) are not its prompt."""
        silent = self._pauses is not None and self._pauses.silence_ms > 0
        if heard and self._ahead is None and not silent:
            self._prime(heard)

    def _final_so_far(self) -> Transcript | None:
        """`final` of every frame so far (None: no speech in them, or no `final`)."""
        if self._final is None:
            return None
        try:
            return self._final(_samples(self._recorded))
        except NoSpeech:  # at stop, the turn says so from the upload
            return None

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


@dataclass
class _Answer:
    """One run of a recording's turn: the transcript it answers, its events as they come, and
    its flags (`release`: it may be heard and act; `cancel`: it stops)."""

    transcript: Transcript
    events: Relay[Event]
    cancel: threading.Event
    release: Release


class StartedTurn:
    """A recording's turn answered from the page's socket: prepared in a pause from that
    pause's transcript (unheard until stop), released at stop if the person said no more, else
    started then from the final transcript. Its reply audio goes to the page's socket; the
    page's turn handler shows its events (`events`)."""

    def __init__(
        self, request: TurnRequest, run: TurnRunner, live: LiveSessions, client_id: str
    ) -> None:
        self.request = request  # its text is the recording's transcript, once it started
        self.number = 0  # the page's turn number, once it started
        self._run, self._live, self._client_id = run, live, client_id
        self._prepared: _Answer | None = None  # answering a pause's transcript, unheard
        self._answer: _Answer | None = None  # the one heard
        self._decided = threading.Event()  # it started, or there were no words to answer
        self._replying = False  # the page was told its reply starts
        self.ahead = False  # the answer heard is the one prepared in the pause before stop

    def prepare(self, transcript: Transcript) -> None:
        """Start answering `transcript` (the recording's, made in a pause), unheard until stop."""
        self.drop()
        self._prepared = self._start(transcript)

    def drop(self) -> None:
        """The person spoke on, or the recording was dropped: the prepared answer goes unheard."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            prepared.cancel.set()

    def finish(self, recording: RecordingStream) -> None:
        """The recording stopped: answer its final transcript, as soon as it is made."""
        threading.Thread(
            target=self._finish, args=(recording,), name="voxloop-record-turn", daemon=True
        ).start()

    def began(self) -> bool:
        """Whether the turn started (False: the recording had no words; the upload is heard)."""
        self._decided.wait()  # soon: the transcript waits at most RESULT_WAIT_SECONDS
        return self._answer is not None

    def events(self) -> Iterator[Event]:
        """The turn's events, as they come (its errors raised here); once it began."""
        if self._answer is None:
            raise RuntimeError("the recording's turn did not begin")
        return iter(self._answer.events)

    def _finish(self, recording: RecordingStream) -> None:
        try:  # whatever happens here, the handler must not wait for this turn forever
            transcript = recording.transcript()
            if transcript is None:
                self.drop()
                not_answering(self._live, self._client_id)
                return
            answer = self._prepared
            self.ahead = answer is not None and answer.transcript.text == transcript.text
            if answer is None or not self.ahead:
                self.drop()  # they said more after it: answer every word
                answer = self._start(transcript)
            self.request.hear(transcript)
            self.number, _ = self._live.begin_turn(self._client_id, answer.cancel)
            self._answer = answer
            answer.release.set()  # heard from now
            log.info(
                "the recording's answer: %s", "prepared in its pause" if self.ahead else "at stop"
            )
        finally:
            self._decided.set()

    def _start(self, transcript: Transcript) -> _Answer:
        """Start answering `transcript`, held until its `release` is set."""
        answer = _Answer(transcript, Relay(), threading.Event(), Release())
        request = replace(self.request, release=answer.release)
        request.hear(transcript)
        events = self._sending(self._run(request, answer.cancel))
        threading.Thread(
            target=answer.events.pump, args=(events,), name="voxloop-record-answer", daemon=True
        ).start()
        return answer

    def _sending(self, events: Iterator[Event]) -> Iterator[Event]:
        """`events`, the reply's audio sent to the page's socket as it passes."""
        for event in events:
            if isinstance(event, Speech):
                self._send(event)
            yield event

    def _send(self, speech: Speech) -> None:
        if not self._replying:
            self._replying = True
            self._live.start_reply(self._client_id, self.number, speech.chunk.sample_rate)
        self._live.send_audio(self._client_id, self.number, speech.chunk)


def _pause_detector(settings: Settings) -> TurnDetector | None:
    """Speech detection on the recording, with a "pause" after server.transcribe_pause_ms."""
    pause_ms = settings.server.transcribe_pause_ms
    if not pause_ms:
        return None
    return TurnDetector(settings.vad.model_copy(update={"speculate_ms": pause_ms}))


def _samples(frames: list[bytes]) -> np.ndarray:
    """int16 little-endian frames -> float32 samples."""
    return from_int16(b"".join(frames))


def start(
    live: LiveSessions,
    client_id: str,
    pipeline: Pipeline,
    options: Options | None = None,
    answer_at_stop: bool = False,
) -> None:
    """The page's record button started recording: transcribe its frames as they come, and
    evaluate the prompt of the turn they will start (with the page's `options`) as words come;
    with `answer_at_stop`, that turn starts at stop (see StartedTurn)."""
    session = live.get(client_id)
    if session.recording is not None:
        session.recording.cancel()
    chosen = options or Options()

    def show(text: str) -> None:
        live.send_json(client_id, {"type": "partial", "text": text})

    def request() -> TurnRequest:
        return TurnRequest(
            session=session.session or client_id,
            system_prompt=chosen.system_prompt,
            voice=chosen.voice,
            speed=chosen.speed,
        )

    def prime(text: str) -> None:
        pipeline.prime_turn(request(), text)

    def final(samples: np.ndarray) -> Transcript:
        return pipeline.hear(samples, request())

    stt = pipeline.settings.stt
    other_final = stt.engine != stt.partial_engine  # the final transcript is that engine's
    turn = StartedTurn(request(), pipeline.run, live, client_id) if answer_at_stop else None
    session.recording = RecordingStream(
        pipeline.settings, show, prime, final if other_final else None, turn
    )


def stop(live: LiveSessions, client_id: str) -> None:
    """The record button stopped: the recording waits, finishing (its turn maybe started),
    for the page's turn handler."""
    session = live.get(client_id)
    recording, session.recording = session.recording, None
    if recording is not None:
        recording.stop()
        if recording.turn is not None and recording.long:  # the handler summarizes the file
            recording.turn.drop()
            recording.turn = None
        if recording.turn is not None:
            recording.turn.finish(recording)
        session.recorded.append(recording)
    if recording is None or recording.turn is None:  # nothing streamed, or not answered here
        not_answering(live, client_id)


def not_answering(live: LiveSessions, client_id: str) -> None:
    """Tell the page that no turn starts at this stop, so its upload need not wait for one
    (the page holds it until the reply's first sound): the page's handler answers the file."""
    live.send_json(client_id, {"type": "record", "answering": False})


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


def take(live: LiveSessions, client_id: str, seconds: float) -> RecordingStream | None:
    """The page's oldest stopped recording, if it is the recording of `seconds` that reached
    the turn (else None: transcribe the upload)."""
    try:
        recording: RecordingStream = live.get(client_id).recorded.popleft()
    except IndexError:  # another turn took it
        return None
    if abs(recording.seconds - seconds) > LENGTH_TOLERANCE_SECONDS:
        log.info(
            "streamed %.1f s, uploaded %.1f s: not the same recording", recording.seconds, seconds
        )
        return None
    return recording
