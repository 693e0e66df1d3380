"""The page's turn handlers: what happens on Send, on recording, on Stop and on New conversation."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from voxloop import audio, recording_stream
from voxloop.app.latency import STREAMED, Timings, latency_frame, latency_text
from voxloop.config import Settings
from voxloop.errors import VoxloopError
from voxloop.live import LiveSessions
from voxloop.memory import Memory
from voxloop.pipeline import Pipeline
from voxloop.scheduling import Relay
from voxloop.turns import Done, Event, Heard, ReplyText, Speech, TurnRequest

log = logging.getLogger("voxloop.app")
PROGRESS_BAR_CELLS = 20

Update = dict[Any, Any]  # Gradio output component -> new value
ChatMessages = list[dict[str, Any]]  # the Chatbot's value: {"role": ..., "content": ...} each


@dataclass(frozen=True)
class Progressed:
    """How far a long recording has come."""

    fraction: float
    message: str


def progress_bar(progress: Progressed) -> str:
    """The status line for long work: a bar, the percentage, and what is being done."""
    filled = round(progress.fraction * PROGRESS_BAR_CELLS)
    bar = "▰" * filled + "▱" * (PROGRESS_BAR_CELLS - filled)
    return f"⏳ {bar} {progress.fraction:.0%} · {progress.message}"


@dataclass(frozen=True)
class ChatView:
    """The conversation side of the page: the parts a turn updates."""

    chat: gr.Chatbot
    status: gr.Markdown
    audio_out: gr.Audio
    latency: gr.Markdown
    plot: gr.BarPlot
    timings: gr.State

    def outputs(self) -> list[Any]:
        """The parts, in the order the page's events list them."""
        return [self.chat, self.status, self.audio_out, self.latency, self.plot, self.timings]

    def fresh(self, status: str) -> Update:
        """An empty conversation, with `status` shown."""
        return {
            self.chat: [],
            self.status: status,
            self.audio_out: None,
            self.latency: "",
            self.plot: None,
            self.timings: [],
        }


class TurnHandlers:
    """The turn's events on the page; they only call the pipeline and the live sessions."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        live: LiveSessions,
        memory: Memory,
        view: ChatView,
        memory_view: Callable[[str], Update],
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.live = live
        self.memory = memory
        self.view = view
        self.memory_view = memory_view  # the Memory panel's lists, refreshed after each turn

    def respond(
        self,
        audio_path: str | None,
        chat: ChatMessages,
        voice: str,
        speed: float,
        system_prompt: str,
        client_id: str,
        session: str | None,
        timings: Timings,
        recorded: bool = False,
    ) -> Iterator[Update]:
        """Run one turn, streaming the chat text, the audio and the status to the page.

        A long recording is transcribed and summarized (with a progress bar) instead; its
        summary is the reply, and later questions can be about it. `recorded`: the question
        was just recorded with the record button, whose page may have streamed it already.
        """
        view = self.view
        self.link_page(client_id, session or client_id)  # its timers' alerts come to this page
        to_socket = self.settings.server.playback == "websocket" and self.live.connected(client_id)
        chat = list(chat or [])
        if not audio_path:
            self.live.begin_turn(client_id)  # a click on Send stops the running turn
            yield {view.status: "⚠️ Record or upload a question first."}
            return
        yield {view.status: "Listening…", view.audio_out: None}
        chunks: list[audio.AudioChunk] = []
        try:
            request = TurnRequest(
                system_prompt=system_prompt,
                voice=voice,
                speed=speed,
                session=session or client_id,
            )
            turn_number, events, sent = self._start(request, audio_path, client_id, recorded)
            for event in events:
                if isinstance(event, Progressed):
                    yield {view.status: progress_bar(event)}
                elif isinstance(event, Heard):
                    chat += [
                        {"role": "user", "content": event.text},
                        {"role": "assistant", "content": ""},
                    ]
                    yield {view.chat: chat, view.status: "Thinking…"}
                elif isinstance(event, ReplyText):
                    chat[-1] = {"role": "assistant", "content": chat[-1]["content"] + event.delta}
                    # Before the first sound the reply's words wait: the page re-rendering the
                    # chat for every word took the cores the first sound needed (~170 ms;
                    # docs/benchmarks.md, the record button).
                    if chunks:
                        yield {view.chat: chat}
                elif isinstance(event, Speech):
                    if not chunks and to_socket and not sent:
                        self.live.start_reply(client_id, turn_number, event.chunk.sample_rate)
                    chunks.append(event.chunk)
                    if to_socket:
                        if not sent:
                            self.live.send_audio(client_id, turn_number, event.chunk)
                        yield {view.status: "Speaking…", view.chat: chat}
                    else:
                        yield {
                            view.status: "Speaking…",
                            view.chat: chat,
                            view.audio_out: (event.chunk.sample_rate, event.chunk.pcm),
                        }
                elif isinstance(event, Done):
                    streamed = request.text is not None  # the recording's, transcribed as it came
                    yield self._finish(
                        event, chat, chunks, session or client_id, timings, to_socket, streamed
                    )
        except VoxloopError as err:
            gr.Warning(str(err))
            yield {view.status: f"⚠️ {err}"}
        except Exception as err:  # a bug: keep serving, show a readable line, log the details
            log.exception("turn failed")
            yield {view.status: f"⚠️ Something went wrong ({type(err).__name__}). Please try again."}

    def respond_recorded(
        self,
        audio_path: str | None,
        chat: ChatMessages,
        voice: str,
        speed: float,
        system_prompt: str,
        client_id: str,
        session: str | None,
        timings: Timings,
    ) -> Iterator[Update]:
        """Run the turn of a recording that just stopped: with the transcript its page
        streamed while it recorded, when there is one (see recording_stream.py)."""
        yield from self.respond(
            audio_path, chat, voice, speed, system_prompt, client_id, session, timings, True
        )

    def _start(
        self, request: TurnRequest, audio_path: str, client_id: str, recorded: bool
    ) -> tuple[int, Iterator[Event | Progressed], bool]:
        """Start the turn of `request` about a file: (its number, its events, whether its
        audio goes to the page's socket already). A long recording is summarized; a recording
        of the record button that its page streamed has its transcript ready, or its turn
        started at stop already (recording_stream.py)."""
        if self.pipeline.is_long_recording(audio_path):
            number, cancel = self.live.begin_turn(client_id)
            request.recording = audio_path
            return number, self._with_progress(request, cancel), False
        samples = self.pipeline.load_audio(audio_path)
        seconds = len(samples) / audio.SAMPLE_RATE
        streamed = recording_stream.take(self.live, client_id, seconds) if recorded else None
        started = streamed.turn if streamed is not None else None
        if started is not None and started.began():
            request.text = started.request.text
            return started.number, started.events(), True
        number, cancel = self.live.begin_turn(client_id)
        transcript = streamed.transcript() if streamed is not None else None
        if transcript is None:
            request.audio = samples
        else:
            request.hear(transcript)
        return number, self.pipeline.run(request, cancel), False

    def _with_progress(
        self, request: TurnRequest, cancel: threading.Event
    ) -> Iterator[Event | Progressed]:
        """The turn's events, with progress reports in between (the turn runs in a thread)."""
        relay: Relay[Event | Progressed] = Relay()
        request.progress = lambda done, message: relay.put(Progressed(done, message))
        relay.put(Progressed(0.0, "Reading the recording…"))
        turn = self.pipeline.run(request, cancel)
        threading.Thread(
            target=relay.pump, args=(turn,), name="voxloop-recording", daemon=True
        ).start()
        return iter(relay)

    def _finish(
        self,
        done: Done,
        chat: ChatMessages,
        chunks: list[audio.AudioChunk],
        session: str,
        timings: Timings,
        to_socket: bool,
        streamed: bool = False,
    ) -> Update:
        view, turn = self.view, done.turn
        if turn.cancelled:
            chat[-1] = {"role": "assistant", "content": (turn.heard_reply + " …").strip()}
        timings = [*timings, turn.timings_ms]
        update: Update = {
            view.chat: chat,
            view.status: "Stopped." if turn.cancelled else "Ready.",
            view.latency: latency_text(len(timings), turn.timings_ms, STREAMED if streamed else ""),
            view.plot: latency_frame(timings),
            view.timings: timings,
            **self.memory_view(session),
        }
        if to_socket and chunks:  # the visible player gets the whole reply to replay
            whole = audio.join_chunks(chunks)
            update[view.audio_out] = (whole.sample_rate, whole.pcm)
        return update

    def stop(self, client_id: str) -> str:
        """Stop the running turn and its audio."""
        self.live.stop(client_id)
        return "Stopped."

    def clear(self, client_id: str, session: str | None) -> Update:
        """Start a new conversation (the old one stays in the Memory panel)."""
        self.live.stop(client_id)
        self.memory.new_conversation(session or client_id)
        return {**self.view.fresh("New conversation."), **self.memory_view(session or client_id)}

    def link_page(self, client_id: str, session: str | None) -> None:
        """Let the page's hands-free conversation use the person's memory."""
        if client_id and session:
            self.live.get(client_id).session = session

    def follow_handsfree(
        self, client_id: str, shown_version: int, timings: Timings, shown_turn: int
    ) -> tuple[Any, ...]:
        """The hands-free chat and latency, when they changed since the page last showed them:
        (chat, its version, latency line, plot, timings, last turn in the timings)."""
        conversation = self.live.get(client_id).handsfree if client_id else None
        if conversation is None or conversation.version == shown_version:
            return _skips(6)
        new = [(turn, stamps) for turn, stamps in conversation.timings if turn > shown_turn]
        if not new:
            return (list(conversation.chat), conversation.version, *_skips(4))
        timings = [*timings, *(stamps for _turn, stamps in new)]
        return (
            list(conversation.chat),
            conversation.version,
            latency_text(len(timings), timings[-1]),
            latency_frame(timings),
            timings,
            new[-1][0],
        )


def _skips(count: int) -> tuple[Any, ...]:
    """`count` outputs left as they are (one update dict each: Gradio may change them)."""
    return tuple(gr.skip() for _ in range(count))
