"""The record button's stream: microphone frames over the page's socket (or straight into a
RecordingStream) give live transcripts and, at stop, the transcript the uploaded file would
have had (the live engine's, or stt.engine's on the streamed audio); a turn takes it only when
it is the same recording."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.sync.client import connect

from servers import serve_in_thread
from voxloop import audio, recording_stream
from voxloop.config import Settings, load_settings
from voxloop.live import LiveSessions
from voxloop.memory import Memory
from voxloop.pipeline import Pipeline
from voxloop.recording_stream import RecordingStream
from voxloop.stt import Transcript
from voxloop.turns import Done, ReplyText, Speech, TurnRequest
from voxloop_bench import feed_like_a_microphone
from voxloop_bench.answers import spoken_question
from voxloop_bench.recordings import Recording, wer

CLIENT = "page"
# Moonshine's streaming decoder and its one-shot transcription of the same audio may differ
# in a word or two.
MAX_WER_TO_FILE = 0.1
LIVE_ENGINE = "moonshine"  # the streamed transcript is the final one when it is stt.engine
WAIT_SECONDS = 30
# A person's click on stop soon after their last word (the record bench clicks at 0.5 s).
SHORT_PAUSE_SECONDS = 0.15
LOUD_SHARE = 0.05  # of the peak: a word's sound, not the room's
WORD_TAIL_SECONDS = 0.05  # a word's fading end, kept


def _wait(condition: Any, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pipeline(settings: Settings) -> Pipeline:
    """The pipeline with the live engine making final transcripts too: the stream's own."""
    return Pipeline(
        settings.model_copy(update={"stt": settings.stt.model_copy(update={"engine": LIVE_ENGINE})})
    )


def _streamed(live: LiveSessions, pipeline: Pipeline, samples: np.ndarray) -> str | None:
    """Stream `samples` as one recording (all at once) and take its transcript."""
    recording_stream.start(live, CLIENT, pipeline)
    feed_like_a_microphone(
        lambda frame: recording_stream.feed(live, CLIENT, frame), samples, real_time=False
    )
    recording_stream.stop(live, CLIENT)
    recording = recording_stream.take(live, CLIENT, len(samples) / audio.SAMPLE_RATE)
    transcript = recording.transcript() if recording is not None else None
    return transcript.text if transcript else None


def test_frames_over_the_socket_are_transcribed_live_and_ready_at_stop(
    tmp_path: Path, real_recordings: list[Recording], pipeline: Pipeline
) -> None:
    from voxloop.server import create_app

    recording = next(r for r in real_recordings if r.name == "librivox-0870")
    samples = audio.load(recording.path)
    streaming = {"server": {"stream_recordings": True}, "stt": {"engine": LIVE_ENGINE}}
    app = create_app(load_settings(data_dir=tmp_path, **streaming))
    app.state.pipeline.warm_up()  # as `voxloop serve` does before it serves
    live: LiveSessions = app.state.live
    with (
        serve_in_thread(app) as url,
        connect(f"{url.replace('http', 'ws', 1)}/ws/live?client={CLIENT}") as socket,
    ):
        socket.send(json.dumps({"type": "record", "on": True}))
        feed_like_a_microphone(socket.send, samples)  # binary frames, at a microphone's pace
        socket.send(json.dumps({"type": "record", "on": False}))
        _wait(lambda: len(live.get(CLIENT).recorded) == 1)
        recording = recording_stream.take(live, CLIENT, len(samples) / audio.SAMPLE_RATE)
        transcript = recording.transcript() if recording is not None else None
        assert transcript is not None
        partials = []
        while not partials or partials[-1] != transcript.text:
            message = json.loads(socket.recv(timeout=WAIT_SECONDS))
            if message["type"] == "partial":
                partials.append(message["text"])
    # the live transcript grew while the recording was being sent, before the final one
    assert len(partials) > 3, partials
    assert any(0 < len(p.split()) < len(transcript.text.split()) for p in partials), partials
    file_transcript = pipeline.transcribe(samples).text
    assert wer([(file_transcript, transcript.text)]) <= MAX_WER_TO_FILE, (
        file_transcript,
        transcript.text,
    )


def test_streamed_recordings_give_the_files_transcripts(
    settings: Settings, real_recordings: list[Recording], pipeline: Pipeline
) -> None:
    live = LiveSessions()
    pairs = []
    for recording in [r for r in real_recordings if r.kind in ("read", "commands")]:
        samples = audio.load(recording.path)
        streamed = _streamed(live, pipeline, samples)
        assert streamed is not None, recording.name
        pairs.append((pipeline.transcribe(samples).text, streamed))
    assert wer(pairs) <= MAX_WER_TO_FILE, pairs


def test_a_turn_takes_only_its_own_recording(
    pipeline: Pipeline, real_recordings: list[Recording]
) -> None:
    samples = audio.load(next(r for r in real_recordings if r.name == "librivox-0880").path)
    seconds = len(samples) / audio.SAMPLE_RATE
    live = LiveSessions()
    assert recording_stream.take(live, CLIENT, seconds) is None  # an upload: nothing streamed
    recording_stream.start(live, CLIENT, pipeline)
    recording_stream.feed(live, CLIENT, audio.to_int16(samples).tobytes())
    recording_stream.stop(live, CLIENT)
    # a clip of another length is another recording: the turn transcribes the upload
    assert recording_stream.take(live, CLIENT, seconds + 5) is None
    assert not live.get(CLIENT).recorded, "a recording that was not the turn's was kept"
    assert _streamed(live, pipeline, samples), "the next recording was not taken"


def test_a_final_engine_other_than_the_streaming_one_transcribes_the_stream_at_stop(
    tmp_path: Path, real_recordings: list[Recording]
) -> None:
    # Only at stop: a transcript made in a pause has the audio without its last silence.
    settings = load_settings(
        data_dir=tmp_path, stt={"engine": "whisper"}, server={"transcribe_pause_ms": 0}
    )
    pipeline = Pipeline(settings)
    samples = audio.load(next(r for r in real_recordings if r.name == "librivox-0880").path)
    live = ShownLive()
    streamed = _streamed(live, pipeline, samples)
    # Whisper's transcript of the streamed audio (16-bit, as the page sends it): the upload's,
    # ready without the upload
    as_sent = audio.from_int16(audio.to_int16(samples).tobytes())
    assert streamed == pipeline.transcribe(as_sent).text
    assert live.shown and live.shown[-1] == streamed, live.shown


def test_a_recording_is_transcribed_in_the_pause_before_stop_and_again_if_more_is_said(
    tmp_path: Path, real_recordings: list[Recording]
) -> None:
    pipeline = Pipeline(load_settings(data_dir=tmp_path, stt={"engine": "whisper"}))
    first, second = (
        audio.load(next(r for r in real_recordings if r.name == name).path)
        for name in ("librivox-0880", "librivox-0870")
    )
    pause = np.zeros(audio.SAMPLE_RATE, np.float32)  # longer than server.transcribe_pause_ms
    calls: list[int] = []  # samples given to the final transcription, per call

    def final(samples: np.ndarray) -> Transcript:
        calls.append(len(samples))
        return pipeline.hear(samples, TurnRequest())

    recording = RecordingStream(pipeline.settings, lambda text: None, final=final)
    recording.feed(audio.to_int16(np.concatenate([first, pause])).tobytes())
    _wait(lambda: bool(calls) and calls[-1] > len(first))  # transcribed in the pause
    recording.feed(audio.to_int16(np.concatenate([second, pause])).tobytes())
    said = len(first) + len(pause) + len(second)
    _wait(lambda: calls[-1] > said)  # they said more: transcribed again in the next pause
    made_before_stop = len(calls)
    recording.stop()
    transcript = recording.transcript(WAIT_SECONDS)
    assert len(calls) == made_before_stop, "the transcript made in the last pause was not taken"
    assert transcript is not None
    whole = pipeline.transcribe(np.concatenate([first, pause, second])).text
    assert wer([(whole, transcript.text)]) <= MAX_WER_TO_FILE, (whole, transcript.text)


def test_the_prompt_evaluated_in_the_pause_is_the_transcript_the_turn_will_answer(
    tmp_path: Path, real_recordings: list[Recording]
) -> None:
    """Once the pause's transcript (Whisper's) is made, the model evaluates the prompt with
    those words, not with the live engine's later partials: the turn at stop finds its whole
    prompt evaluated."""
    # A pause longer than the recording's own silences: its live transcript comes first.
    pipeline = Pipeline(
        load_settings(
            data_dir=tmp_path, stt={"engine": "whisper"}, server={"transcribe_pause_ms": 300}
        )
    )
    said = audio.load(next(r for r in real_recordings if r.name == "librivox-0880").path)
    pause = np.zeros(audio.SAMPLE_RATE, np.float32)  # longer than server.transcribe_pause_ms
    finals: list[str] = []
    primed: list[str] = []

    def final(samples: np.ndarray) -> Transcript:
        transcript = pipeline.hear(samples, TurnRequest())
        finals.append(transcript.text)
        return transcript

    recording = RecordingStream(pipeline.settings, lambda text: None, primed.append, final)
    # At a microphone's pace: the live transcript, evaluated as it comes while they speak (not
    # once they have fallen silent: the pause's transcript is due then)
    feed_like_a_microphone(recording.feed, said)
    _wait(lambda: bool(primed))
    recording.feed(audio.to_int16(pause).tobytes())
    _wait(lambda: bool(finals))  # transcribed in the pause
    recording.feed(audio.to_int16(pause).tobytes())  # more silence: more live partials
    _wait(lambda: bool(primed) and primed[-1] == finals[-1])
    time.sleep(1.0)  # the live transcript of that silence comes and goes
    assert primed[-1] == finals[-1], (primed, finals)
    recording.stop()
    transcript = recording.transcript(WAIT_SECONDS)
    assert transcript is not None and transcript.text == primed[-1]
    assert primed[0] != transcript.text  # the live engine's words came first


def test_a_short_pause_before_stop_is_enough_and_its_silence_is_not_transcribed_live(
    tmp_path: Path, real_recordings: list[Recording]
) -> None:
    """People click stop soon after their last word: a fraction of a second of silence
    (server.transcribe_pause_ms) has the recording transcribed, and the page shows that
    transcript; while it stands, only silence having come since, the live engine does not
    decode that silence (its partial would replace the words the turn will answer)."""
    pipeline = Pipeline(load_settings(data_dir=tmp_path, stt={"engine": "whisper"}))
    recording_said = next(r for r in real_recordings if r.name == "librivox-0920")
    said = _up_to_last_word(audio.load(recording_said.path))
    short_pause = np.zeros(int(SHORT_PAUSE_SECONDS * audio.SAMPLE_RATE), np.float32)
    made: list[int] = []  # samples given to the final transcription, per call, once made
    shown: list[str] = []  # live partials

    def final(samples: np.ndarray) -> Transcript:
        transcript = pipeline.hear(samples, TurnRequest())
        made.append(len(samples))
        return transcript

    recording = RecordingStream(pipeline.settings, shown.append, final=final)
    recording.feed(audio.to_int16(np.concatenate([said, short_pause])).tobytes())
    _wait(lambda: bool(made) and made[-1] > len(said))  # transcribed in that short pause
    _wait(lambda: bool(shown))  # and shown: the words the turn will answer
    pause_transcript = shown[-1]
    recording.feed(audio.to_int16(np.zeros(audio.SAMPLE_RATE, np.float32)).tobytes())
    time.sleep(1.0)  # a live partial of that second of silence would come now
    assert shown[-1] == pause_transcript and shown.count(pause_transcript) == 1, shown
    recording.stop()
    transcript = recording.transcript(WAIT_SECONDS)
    assert len(made) == 1 and transcript is not None and transcript.text == pause_transcript
    assert wer([(recording_said.text, transcript.text)]) <= MAX_WER_TO_FILE, transcript.text


def _up_to_last_word(samples: np.ndarray) -> np.ndarray:
    """`samples` cut just after their last loud sound: the silence after it is the test's."""
    loud = np.nonzero(np.abs(samples) > LOUD_SHARE * np.abs(samples).max())[0]
    return samples[: loud[-1] + int(WORD_TAIL_SECONDS * audio.SAMPLE_RATE)]


class ShownLive(LiveSessions):
    """LiveSessions that keeps the control messages it would send to the page."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []

    def send_json(self, client_id: str, message: dict[str, Any]) -> None:
        """Keep the message instead of sending it."""
        self.sent.append(message)

    @property
    def shown(self) -> list[str]:
        """The live transcripts the page would show."""
        return [message["text"] for message in self.sent if message["type"] == "partial"]

    @property
    def replies(self) -> list[int]:
        """The turns whose reply the page was told starts."""
        return [message["turn"] for message in self.sent if message["type"] == "reply"]


class WatchedTurn:
    """A recording's turn (StartedTurn) on the real pipeline, with each of its runs watched:
    the words it answers and the events it gives, as they come."""

    def __init__(self, pipeline: Pipeline, live: LiveSessions) -> None:
        from voxloop.recording_stream import StartedTurn

        self.pipeline = pipeline
        self.answered: list[str] = []  # each run's words, as it starts
        self.seen: list[tuple[int, Any]] = []  # (run, event), as each run gives them
        self.ended: set[int] = set()  # runs that are over
        self.turn = StartedTurn(TurnRequest(session=CLIENT), self._run, live, CLIENT)

    def _run(self, request: TurnRequest, cancel: Any) -> Any:
        self.answered.append(request.text or "")
        run = len(self.answered)
        for event in self.pipeline.run(request, cancel):
            self.seen.append((run, event))
            yield event
        self.ended.add(run)

    def wrote(self, run: int) -> bool:
        """Whether run number `run` has written some of its reply."""
        return any(number == run and isinstance(e, ReplyText) for number, e in self.seen)

    def heard(self) -> list[Any]:
        """Events of the turn that nobody may hear before stop."""
        return [e for _n, e in self.seen if isinstance(e, Speech | Done)]


def _recording_answered_here(
    pipeline: Pipeline, live: ShownLive
) -> tuple[RecordingStream, WatchedTurn]:
    watched = WatchedTurn(pipeline, live)

    def final(samples: np.ndarray) -> Transcript:
        return pipeline.hear(samples, TurnRequest())

    recording = RecordingStream(
        pipeline.settings, lambda text: None, final=final, turn=watched.turn
    )
    return recording, watched


def test_the_answer_is_prepared_in_the_pause_before_stop_and_heard_at_stop(
    tmp_path: Path,
    clearly_spoken,  # type: ignore[no-untyped-def]
) -> None:
    """As hands-free prepares its answer in a pause, so does the record button: the answer to
    the pause's transcript is written and its first sound made before stop, nobody hearing it;
    at stop, the person having said no more, that answer is the one heard."""
    memory = Memory(tmp_path / "memory.db")
    pipeline = Pipeline(load_settings(data_dir=tmp_path, stt={"engine": "whisper"}), memory)
    question = _up_to_last_word(audio.load(clearly_spoken("What is the capital of Japan?")))
    live = ShownLive()
    recording, watched = _recording_answered_here(pipeline, live)
    recording.feed(audio.to_int16(np.concatenate([question, _silence(1.0)])).tobytes())
    _wait(lambda: watched.wrote(1))  # answering the pause's transcript, before stop
    time.sleep(0.5)  # its first sound is made, and waits
    assert watched.heard() == [] and live.replies == [], "heard before stop"
    recording.stop()
    watched.turn.finish(recording)
    assert watched.turn.began()
    events = list(watched.turn.events())
    assert len(watched.answered) == 1 and watched.turn.ahead, f"answered again: {watched.answered}"
    assert "capital of japan" in watched.answered[0].lower()
    done = events[-1]
    assert isinstance(done, Done) and "tokyo" in done.turn.reply.lower(), done
    assert any(isinstance(e, Speech) for e in events) and live.replies == [watched.turn.number]
    assert [m["role"] for m in memory.recall(CLIENT).history] == ["user", "assistant"]


def test_more_words_after_a_pause_drop_its_prepared_answer_unheard(
    tmp_path: Path,
    clearly_spoken,  # type: ignore[no-untyped-def]
) -> None:
    """A person who pauses mid-sentence ("What is the capital ... of Japan?") and goes on
    hears only the answer to their whole question: the one prepared in the pause is dropped
    before anyone hears it, and nothing of it is stored."""
    memory = Memory(tmp_path / "memory.db")
    pipeline = Pipeline(load_settings(data_dir=tmp_path, stt={"engine": "whisper"}), memory)
    start = _up_to_last_word(audio.load(clearly_spoken("What is the capital")))
    rest = _up_to_last_word(audio.load(clearly_spoken("of Japan?")))
    live = ShownLive()
    recording, watched = _recording_answered_here(pipeline, live)
    recording.feed(audio.to_int16(np.concatenate([start, _silence(1.0)])).tobytes())
    _wait(lambda: watched.wrote(1))  # the words so far are being answered
    recording.feed(audio.to_int16(rest).tobytes())
    _wait(lambda: 1 in watched.ended)  # dropped as they speak on, not left waiting for stop
    recording.feed(audio.to_int16(_silence(1.0)).tobytes())
    _wait(lambda: len(watched.answered) == 2)  # all the words, prepared in the next pause
    recording.stop()
    watched.turn.finish(recording)
    assert watched.turn.began()
    events = list(watched.turn.events())
    assert "japan" not in watched.answered[0].lower() and "japan" in watched.answered[1].lower()
    assert not any(n == 1 and isinstance(e, Speech | Done) for n, e in watched.seen)
    done = events[-1]
    assert isinstance(done, Done) and "tokyo" in done.turn.reply.lower(), done
    assert live.replies == [watched.turn.number], live.sent
    stored = memory.recall(CLIENT).history
    assert len(stored) == 2 and "japan" in stored[0]["content"].lower(), stored


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * audio.SAMPLE_RATE), np.float32)


def test_the_turn_starts_at_stop_and_the_page_handler_shows_that_turn(
    tmp_path: Path,
    clearly_spoken,  # type: ignore[no-untyped-def]
) -> None:
    """With server.answer_at_stop (the default) the reply plays before Gradio has uploaded
    the recording; the upload's handler then shows that turn instead of answering again."""
    import gradio as gr

    from voxloop.app.handlers import ChatView, TurnHandlers
    from voxloop.server import create_app

    question = clearly_spoken("What is the capital of Japan?")
    samples = audio.load(question)
    app = create_app(load_settings(data_dir=tmp_path))
    pipeline: Pipeline = app.state.pipeline
    pipeline.warm_up()
    live: LiveSessions = app.state.live
    with (
        serve_in_thread(app) as url,
        connect(f"{url.replace('http', 'ws', 1)}/ws/live?client={CLIENT}") as socket,
    ):
        # The page's choices travel with "record on": a Kokoro voice speaks at 24 kHz (joe 22.05).
        socket.send(json.dumps({"type": "record", "on": True, "voice": "jm_kumo", "speed": 1.0}))
        silence = np.zeros(audio.SAMPLE_RATE // 2, np.float32)
        feed_like_a_microphone(socket.send, np.concatenate([silence, samples, silence]))
        socket.send(json.dumps({"type": "record", "on": False}))
        header, audio_bytes = _reply_over_the_socket(socket)
        # No handler has been called yet: the reply started on "record off" alone.
        assert header["sample_rate"] == KOKORO_RATE, header
        assert audio_bytes > 0

        view = ChatView(
            gr.Chatbot(), gr.Markdown(), gr.Audio(), gr.Markdown(), gr.BarPlot(), gr.State()
        )
        memory = pipeline.memory
        assert memory is not None
        page = TurnHandlers(pipeline.settings, pipeline, live, memory, view, lambda _s: {})
        uploaded = tmp_path / "recorded.wav"
        recorded = np.concatenate([silence, samples, silence])
        uploaded.write_bytes(audio.wav_bytes(audio.to_int16(recorded), audio.SAMPLE_RATE))
        updates = [  # as the page gets them: the chat as it was at each update
            {key: copy.deepcopy(value) for key, value in update.items()}
            for update in page.respond_recorded(str(uploaded), [], "joe", 1.0, "", CLIENT, None, [])
        ]
        chat = next(u[view.chat] for u in reversed(updates) if view.chat in u)
        replies = _reply_headers_until_quiet(socket)
    # The reply's words reach the page with its first sound, not word by word before it.
    speaking = next(i for i, u in enumerate(updates) if u.get(view.status) == "Speaking…")
    early = [u[view.chat][-1]["content"] for u in updates[:speaking] if view.chat in u]
    assert not any(early), early
    user, assistant = chat[0]["content"], chat[1]["content"]
    assert "capital of japan" in user.lower() and "tokyo" in assistant.lower(), chat
    assert replies == [], f"the handler answered again: {replies}"
    stored = memory.recall(CLIENT).history
    assert [m["role"] for m in stored] == ["user", "assistant"], stored
    assert stored[1]["content"].strip() == assistant.strip()


KOKORO_RATE = 24000


def _reply_over_the_socket(socket: Any) -> tuple[dict[str, Any], int]:
    """The page's reply header and the bytes of its first audio message."""
    header: dict[str, Any] | None = None
    while True:
        message = socket.recv(timeout=WAIT_SECONDS)
        if isinstance(message, bytes) and header is not None:
            return header, len(message) - 4  # [u32 turn][int16 PCM]
        if isinstance(message, str) and json.loads(message)["type"] == "reply":
            header = json.loads(message)


def _reply_headers_until_quiet(socket: Any, quiet_seconds: float = 2.0) -> list[dict[str, Any]]:
    """Reply headers the page gets until its socket has been quiet a while."""
    headers = []
    while True:
        try:
            message = socket.recv(timeout=quiet_seconds)
        except TimeoutError:
            return headers
        if isinstance(message, str) and json.loads(message)["type"] == "reply":
            headers.append(json.loads(message))


def test_a_recording_without_words_starts_no_turn_at_stop(pipeline: Pipeline) -> None:
    """The page's handler then hears the upload and says nothing was heard, as before; the
    page is told at once, so it does not hold the upload waiting for a reply."""
    from voxloop.recording_stream import StartedTurn

    live = ShownLive()
    recording = RecordingStream(pipeline.settings, lambda text: None)
    recording.feed(audio.to_int16(np.zeros(2 * audio.SAMPLE_RATE, np.float32)).tobytes())
    recording.stop()

    def run(request: TurnRequest, cancel: Any) -> Any:
        raise AssertionError(f"a turn started for {request.text!r}")

    started = StartedTurn(TurnRequest(), run, live, CLIENT)
    started.finish(recording)
    assert not started.began()
    assert live.get(CLIENT).turn == 0, "the page's running turn was cancelled for nothing"
    assert live.sent == [NOT_ANSWERING], live.sent


def test_a_recording_stopped_without_answer_at_stop_lets_the_page_upload_at_once(
    pipeline: Pipeline,
) -> None:
    live = ShownLive()
    recording_stream.start(live, CLIENT, pipeline, answer_at_stop=False)
    recording_stream.stop(live, CLIENT)
    assert NOT_ANSWERING in live.sent, live.sent
    nothing_streamed = ShownLive()  # server.stream_recordings off: no recording was started
    recording_stream.stop(nothing_streamed, CLIENT)
    assert nothing_streamed.sent == [NOT_ANSWERING], nothing_streamed.sent


NOT_ANSWERING = {"type": "record", "answering": False}


def test_a_misheard_request_at_the_record_button_is_answered_from_another_reading(
    tmp_path: Path,
) -> None:
    """The record button's turn gets the stream's transcript with its other readings: Whisper
    hears flite slt's "How many pints are in a gallon?" as "... points ...", and the units skill
    takes another reading of the same audio."""
    pipeline = Pipeline(load_settings(data_dir=tmp_path, stt={"engine": "whisper"}))
    said = spoken_question(
        "How many pints are in a gallon?", "flite-slt", pipeline.settings.cache_dir
    )
    live = ShownLive()
    recording, watched = _recording_answered_here(pipeline, live)
    recording.feed(audio.to_int16(np.concatenate([said, _silence(1.0)])).tobytes())
    recording.stop()
    watched.turn.finish(recording)
    assert watched.turn.began()
    done = list(watched.turn.events())[-1]
    assert isinstance(done, Done) and done.turn.skill == "units", done
    assert "8 pints" in done.turn.reply and "pints" in done.turn.user_text.lower()
