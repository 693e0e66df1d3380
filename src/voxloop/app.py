"""The Gradio page: speak or upload a question, hear the answer while it is being written.

Element ids (stable, the browser tests use them): audio_in, chat, audio_out, voice, persona,
send, stop, clear; also speed, system_prompt, status, latency, latency_plot, and for hands-free
talk, wake, live_state, live_transcript.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from voxloop import audio, tts
from voxloop.config import Settings
from voxloop.errors import VoxloopError
from voxloop.live import LiveSessions
from voxloop.memory import Memory
from voxloop.pipeline import Done, Event, Heard, Pipeline, ReplyText, Speech, TurnRequest
from voxloop.prompts import PERSONAS

log = logging.getLogger("voxloop.app")
STAGES = {
    "stt": "STT",
    "llm_first_token": "first token",
    "first_audio": "first audio",
    "total": "total",
}
# What each stage adds, in the order it happens (for the stacked latency plot).
SEGMENTS = {
    "stt": "speech to text",
    "llm_first_token": "first token",
    "first_audio": "audio starts",
    "total": "rest of the reply",
}
SEGMENT_COLORS = dict(
    zip(SEGMENTS.values(), ["#0f766e", "#d97706", "#dc2626", "#94a3b8"], strict=True)
)
PLOTTED_TURNS = 20
PROGRESS_BAR_CELLS = 20
HANDSFREE_POLL_SECONDS = 0.5
CUSTOM_PERSONA = "custom"
# System fonts only: Gradio's default theme would fetch fonts from Google.
THEME = gr.themes.Soft(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
)
CSS = "#latency p { font-variant-numeric: tabular-nums; }"

Timings = list[dict[str, float]]  # each turn's stage timings, for the latency plot
Update = dict[Any, Any]  # Gradio output component -> new value
SESSION_KEY = "voxloop_session"  # where the page keeps its person's id (browser storage)


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


def browser_secret(settings: Settings) -> str:
    """The key that seals the person's id in the browser; kept, so restarts do not lose it."""
    path = settings.data_dir / "browser-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def latency_text(number: int, timings_ms: dict[str, float]) -> str:
    """One turn's breakdown, e.g. 'Turn 2: STT 180 ms · first token 330 ms · ...'."""
    parts = [
        f"{label} **{timings_ms[stage]:.0f} ms**"
        for stage, label in STAGES.items()
        if stage in timings_ms
    ]
    return f"Turn {number}: " + " · ".join(parts)


def latency_frame(timings: list[dict[str, float]]) -> pd.DataFrame | None:
    """Recent turns as stacked segments: the top of "speaking starts" is the time to first audio.

    Stage stamps are cumulative (ms since the turn started); the plot shows the time each
    stage added, so a bar's height is the turn's total. None before the first turn (a plot
    that starts from an empty frame never draws its bars).
    """
    if not timings:
        return None
    rows: list[dict[str, Any]] = []
    first = max(1, len(timings) - PLOTTED_TURNS + 1)
    for number, stamps in enumerate(timings[-PLOTTED_TURNS:], start=first):
        previous, turn_rows = 0.0, list[dict[str, Any]]()
        for stage, label in SEGMENTS.items():
            if stage in stamps:
                turn_rows.append(
                    {"turn": str(number), "stage": label, "ms": max(0.0, stamps[stage] - previous)}
                )
                previous = stamps[stage]
        rows += reversed(turn_rows)  # the plot stacks a turn's rows from the last one up
    frame = pd.DataFrame(rows, columns=["turn", "stage", "ms"])
    return frame.astype({"turn": str, "stage": str, "ms": float})


class VoiceChat:
    """The page's event handlers; they only call the pipeline and the live sessions."""

    def __init__(
        self, settings: Settings, pipeline: Pipeline, live: LiveSessions, memory: Memory
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.live = live
        self.memory = memory

    def build(self) -> gr.Blocks:
        """Lay out the page and wire its events."""
        settings = self.settings
        with gr.Blocks(title="voxloop") as page:
            client_id = gr.Textbox(visible=False, elem_id="client_id")
            # The person, per browser: reloading the page continues their conversation.
            session = gr.BrowserState(
                None, storage_key=SESSION_KEY, secret=browser_secret(settings)
            )
            timings = gr.State(list)
            gr.Markdown(
                "## voxloop\nSpeak or upload a question: the answer is spoken as it is "
                "written. Everything runs on this computer."
            )
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(elem_id="chat", label="Conversation", height=380)
                    status = gr.Markdown("Ready.", elem_id="status")
                    audio_out = gr.Audio(
                        elem_id="audio_out",
                        label="Reply",
                        interactive=False,
                        streaming=settings.server.playback == "gradio",
                        autoplay=settings.server.playback == "gradio",
                    )
                with gr.Column(scale=2):
                    with gr.Group():
                        gr.Button("Start conversation", variant="primary", elem_id="talk")
                        gr.Checkbox(
                            label=f"Wake phrase: wait for “{settings.handsfree.wake_phrase}”",
                            elem_id="wake",
                        )
                        gr.HTML(
                            '<div id="live_state"></div><div id="live_transcript"></div>',
                            elem_id="live",
                        )
                    audio_in = gr.Audio(
                        sources=["microphone", "upload"],
                        type="filepath",
                        elem_id="audio_in",
                        label="Your question",
                    )
                    with gr.Row():
                        send = gr.Button("Send", variant="primary", elem_id="send")
                        stop = gr.Button("Stop", variant="stop", elem_id="stop")
                        clear = gr.Button("New conversation", elem_id="clear")
                    voice = gr.Dropdown(
                        [
                            (f"{v.id} ({v.gender}, {v.language}, {v.engine})", v.id)
                            for v in tts.catalog()
                        ],
                        value=settings.tts.voice,
                        label="Voice",
                        elem_id="voice",
                    )
                    speed = gr.Slider(
                        0.5,
                        2.0,
                        value=settings.tts.speed,
                        step=0.05,
                        label="Speaking speed",
                        elem_id="speed",
                    )
                    persona = gr.Dropdown(
                        [(p.name, p.id) for p in PERSONAS.values()] + [("Custom", CUSTOM_PERSONA)],
                        value="assistant",
                        label="Persona",
                        elem_id="persona",
                    )
                    system_prompt = gr.Textbox(
                        PERSONAS["assistant"].system_prompt,
                        lines=4,
                        label="System prompt",
                        elem_id="system_prompt",
                    )
                    latency = gr.Markdown(elem_id="latency")
                    plot = gr.BarPlot(
                        None,
                        x="turn",
                        y="ms",
                        color="stage",
                        label="Latency of recent turns (ms)",
                        elem_id="latency_plot",
                        height=360,
                        color_map=SEGMENT_COLORS,
                    )
                    with gr.Accordion("Memory", open=False, elem_id="memory"):
                        facts = gr.Radio([], label="What voxloop knows about you", elem_id="facts")
                        fact_text = gr.Textbox(
                            label="Fact (pick one to edit it, or type a new one)",
                            elem_id="fact_text",
                        )
                        with gr.Row():
                            fact_save = gr.Button("Save", elem_id="fact_save")
                            fact_delete = gr.Button("Delete", elem_id="fact_delete")
                            forget = gr.Button(
                                "Forget everything", variant="stop", elem_id="forget"
                            )
                        conversations = gr.Radio(
                            [],
                            label="Past conversations (pick one to continue it)",
                            elem_id="conversations",
                        )

            turn_inputs = [audio_in, chat, voice, speed, system_prompt, client_id, session, timings]
            self.outputs = {
                "chat": chat,
                "status": status,
                "audio_out": audio_out,
                "latency": latency,
                "plot": plot,
                "timings": timings,
                "facts": facts,
                "conversations": conversations,
                "fact_text": fact_text,
            }
            turn_outputs = list(self.outputs.values())
            # One turn at a time: the engines are shared and two cores are busy with one.
            for trigger in (audio_in.stop_recording, send.click):
                trigger(
                    self.respond,
                    turn_inputs,
                    turn_outputs,
                    concurrency_id="turn",
                    show_progress="minimal",
                )
            audio_in.start_recording(self.stop, [client_id], [status])
            stop.click(self.stop, [client_id], [status])
            clear.click(self.clear, [client_id, session], turn_outputs)
            memory_view = [facts, conversations, fact_text]
            facts.input(self.pick_fact, [facts], [fact_text])
            fact_save.click(self.save_fact, [session, facts, fact_text], memory_view)
            fact_delete.click(self.delete_fact, [session, facts], memory_view)
            forget.click(self.forget, [client_id, session], turn_outputs)
            conversations.input(self.reopen, [client_id, session, conversations], turn_outputs)
            persona.change(self.pick_persona, [persona, system_prompt], [system_prompt])
            # Hands-free turns happen over the page's WebSocket (see handsfree.py); the chat
            # follows them by polling the session.
            shown_version = gr.State(-1)
            gr.Timer(HANDSFREE_POLL_SECONDS).tick(
                self.follow_handsfree,
                [client_id, shown_version],
                [chat, shown_version],
                show_progress="hidden",
            )
            system_prompt.input(lambda _: CUSTOM_PERSONA, [system_prompt], [persona])
            page.load(None, None, [client_id], js="() => window.voxloop && window.voxloop.clientId")
            page.load(self.open_page, [session], [session, chat, *memory_view])
            # Hands-free turns (over the page's socket) belong to the same person.
            client_id.change(self.link_page, [client_id, session], None)
        page.queue(max_size=settings.server.max_page_queue)  # then "Queue is full, try again"
        return page

    def respond(
        self,
        audio_path: str | None,
        chat: list[dict[str, Any]],
        voice: str,
        speed: float,
        system_prompt: str,
        client_id: str,
        session: str | None,
        timings: Timings,
    ) -> Iterator[Update]:
        """Run one turn, streaming the chat text, the audio and the status to the page.

        A long recording is transcribed and summarized (with a progress bar) instead; its
        summary is the reply, and later questions can be about it.
        """
        out = self.outputs
        self.link_page(client_id, session or client_id)  # its timers' alerts come to this page
        turn_number, cancel = self.live.begin_turn(client_id)
        to_socket = self.settings.server.playback == "websocket" and self.live.connected(client_id)
        chat = list(chat or [])
        if not audio_path:
            yield {out["status"]: "⚠️ Record or upload a question first."}
            return
        yield {out["status"]: "Listening…", out["audio_out"]: None}
        chunks: list[audio.AudioChunk] = []
        try:
            request = TurnRequest(
                system_prompt=system_prompt,
                voice=voice,
                speed=speed,
                session=session or client_id,
            )
            events: Iterator[Event | Progressed]
            if self.pipeline.is_long_recording(audio_path):
                request.recording = audio_path
                yield {out["status"]: progress_bar(Progressed(0.0, "Reading the recording…"))}
                events = self._with_progress(request, cancel)
            else:
                request.audio = self.pipeline.load_audio(audio_path)
                events = self.pipeline.run(request, cancel)
            for event in events:
                if isinstance(event, Progressed):
                    yield {out["status"]: progress_bar(event)}
                elif isinstance(event, Heard):
                    chat += [
                        {"role": "user", "content": event.text},
                        {"role": "assistant", "content": ""},
                    ]
                    yield {out["chat"]: chat, out["status"]: "Thinking…"}
                elif isinstance(event, ReplyText):
                    chat[-1] = {"role": "assistant", "content": chat[-1]["content"] + event.delta}
                    yield {out["chat"]: chat}
                elif isinstance(event, Speech):
                    if not chunks and to_socket:
                        self.live.start_reply(client_id, turn_number, event.chunk.sample_rate)
                    chunks.append(event.chunk)
                    if to_socket:
                        self.live.send_audio(client_id, turn_number, event.chunk)
                        yield {out["status"]: "Speaking…"}
                    else:
                        yield {
                            out["status"]: "Speaking…",
                            out["audio_out"]: (event.chunk.sample_rate, event.chunk.pcm),
                        }
                elif isinstance(event, Done):
                    yield self._finish(
                        event, chat, chunks, session or client_id, timings, to_socket
                    )
        except VoxloopError as err:
            gr.Warning(str(err))
            yield {out["status"]: f"⚠️ {err}"}
        except Exception as err:  # a bug: keep serving, show a readable line, log the details
            log.exception("turn failed")
            yield {
                out["status"]: f"⚠️ Something went wrong ({type(err).__name__}). Please try again."
            }

    def _with_progress(
        self, request: TurnRequest, cancel: threading.Event
    ) -> Iterator[Event | Progressed]:
        """The turn's events, with progress reports in between (the turn runs in a thread)."""
        items: queue.Queue[Event | Progressed | BaseException | None] = queue.Queue()
        request.progress = lambda done, message: items.put(Progressed(done, message))

        def work() -> None:
            try:
                for event in self.pipeline.run(request, cancel):
                    items.put(event)
            except BaseException as err:  # raised again in the handler, which reports it
                items.put(err)
            finally:
                items.put(None)

        threading.Thread(target=work, name="voxloop-recording", daemon=True).start()
        while (item := items.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _finish(
        self,
        done: Done,
        chat: list[dict[str, Any]],
        chunks: list[audio.AudioChunk],
        session: str,
        timings: Timings,
        to_socket: bool,
    ) -> Update:
        out, turn = self.outputs, done.turn
        if turn.cancelled:
            chat[-1] = {"role": "assistant", "content": (turn.heard_reply + " …").strip()}
        timings = [*timings, turn.timings_ms]
        update: Update = {
            out["chat"]: chat,
            out["status"]: "Stopped." if turn.cancelled else "Ready.",
            out["latency"]: latency_text(len(timings), turn.timings_ms),
            out["plot"]: latency_frame(timings),
            out["timings"]: timings,
            **self._memory_view(session),
        }
        if to_socket and chunks:  # the visible player gets the whole reply to replay
            whole = audio.join_chunks(chunks)
            update[out["audio_out"]] = (whole.sample_rate, whole.pcm)
        return update

    def stop(self, client_id: str) -> str:
        """Stop the running turn and its audio."""
        self.live.stop(client_id)
        return "Stopped."

    def clear(self, client_id: str, session: str | None) -> Update:
        """Start a new conversation (the old one stays in the Memory panel)."""
        self.live.stop(client_id)
        self.memory.new_conversation(session or client_id)
        return self._fresh_page(session or client_id, "New conversation.")

    def forget(self, client_id: str, session: str | None) -> Update:
        """Delete every conversation and fact of this person."""
        self.live.stop(client_id)
        self.memory.forget_everything(session or client_id)
        return self._fresh_page(session or client_id, "Everything is forgotten.")

    def reopen(self, client_id: str, session: str | None, conversation: str | None) -> Update:
        """Continue a past conversation: its turns come back into the chat and the context."""
        self.live.stop(client_id)
        if conversation:
            self.memory.open_conversation(session or client_id, int(conversation))
        page = self._fresh_page(session or client_id, "Conversation reopened.")
        return {**page, self.outputs["chat"]: self._chat(session or client_id)}

    def open_page(self, session: str | None) -> tuple[Any, ...]:
        """On page load: the person's id (made on the first visit) and where they left off."""
        session = session or secrets.token_urlsafe(16)
        return (session, self._chat(session), *self._memory_tuple(session))

    def link_page(self, client_id: str, session: str | None) -> None:
        """Let the page's hands-free conversation use the person's memory."""
        if client_id and session:
            self.live.get(client_id).session = session

    @staticmethod
    def pick_fact(fact: str | None) -> str:
        """Put the picked fact in the text box, to edit it."""
        return fact or ""

    def save_fact(self, session: str | None, fact: str | None, text: str) -> tuple[Any, ...]:
        """Correct the picked fact, or add a new one."""
        if session:
            facts = {f.text: f.id for f in self.memory.facts(session)}
            if fact in facts:
                self.memory.edit_fact(session, facts[fact], text)
            else:
                self.memory.add_fact(session, text)
        return self._memory_tuple(session)

    def delete_fact(self, session: str | None, fact: str | None) -> tuple[Any, ...]:
        """Forget the picked fact."""
        if session:
            for known in self.memory.facts(session):
                if known.text == fact:
                    self.memory.delete_fact(session, known.id)
        return self._memory_tuple(session)

    def _memory_tuple(self, session: str | None) -> tuple[Any, ...]:
        view = self._memory_view(session or "")
        return tuple(view[self.outputs[name]] for name in ("facts", "conversations", "fact_text"))

    def _memory_view(self, session: str) -> Update:
        """The Memory panel's lists, fresh from the store."""
        out = self.outputs
        current = self.memory.current(session)
        return {
            out["facts"]: gr.Radio(
                choices=[f.text for f in self.memory.facts(session)], value=None
            ),
            out["conversations"]: gr.Radio(
                choices=[
                    (f"{c.title} ({c.turns} turns)", str(c.id))
                    for c in self.memory.conversations(session)
                ],
                value=str(current),
            ),
            out["fact_text"]: "",
        }

    def _chat(self, session: str) -> list[dict[str, str]]:
        chat = []
        for user_text, reply in self.memory.exchanges(session):
            chat += [
                {"role": "user", "content": user_text},
                {"role": "assistant", "content": reply},
            ]
        return chat

    def _fresh_page(self, session: str, status: str) -> Update:
        out = self.outputs
        return {
            out["chat"]: [],
            out["status"]: status,
            out["audio_out"]: None,
            out["latency"]: "",
            out["plot"]: None,
            out["timings"]: [],
            **self._memory_view(session),
        }

    def follow_handsfree(self, client_id: str, shown_version: int) -> tuple[Any, Any]:
        """The hands-free chat, when it changed since the page last showed it."""
        conversation = self.live.get(client_id).handsfree if client_id else None
        if conversation is None or conversation.version == shown_version:
            return gr.skip(), gr.skip()
        return list(conversation.chat), conversation.version

    @staticmethod
    def pick_persona(persona: str, current: str) -> str:
        """Fill the system prompt from a preset (a custom prompt is left as it is)."""
        return PERSONAS[persona].system_prompt if persona in PERSONAS else current
