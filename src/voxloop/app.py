"""The Gradio page: speak or upload a question, hear the answer while it is being written.

Element ids (stable, the browser tests use them): audio_in, chat, audio_out, voice, persona,
send, stop, clear; also speed, system_prompt, status, latency, latency_plot, and for hands-free
talk, wake, live_state, live_transcript.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import gradio as gr
import pandas as pd

from voxloop import audio, tts
from voxloop.config import Settings
from voxloop.errors import VoxloopError
from voxloop.live import LiveSessions
from voxloop.pipeline import Done, Heard, Pipeline, ReplyText, Speech, TurnRequest
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
HANDSFREE_POLL_SECONDS = 0.5
CUSTOM_PERSONA = "custom"
# System fonts only: Gradio's default theme would fetch fonts from Google.
THEME = gr.themes.Soft(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
)
CSS = "#latency p { font-variant-numeric: tabular-nums; }"

Conversation = dict[str, list[Any]]  # {"history": [Message], "timings": [{stage: ms}]}
Update = dict[Any, Any]  # Gradio output component -> new value


def new_conversation() -> Conversation:
    """An empty conversation: what the model has seen, and the timings of each turn."""
    return {"history": [], "timings": []}


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

    def __init__(self, settings: Settings, pipeline: Pipeline, live: LiveSessions) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.live = live

    def build(self) -> gr.Blocks:
        """Lay out the page and wire its events."""
        settings = self.settings
        with gr.Blocks(title="voxloop") as page:
            client_id = gr.Textbox(visible=False, elem_id="client_id")
            conversation = gr.State(new_conversation)
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

            turn_inputs = [audio_in, chat, voice, speed, system_prompt, client_id, conversation]
            self.outputs = {
                "chat": chat,
                "status": status,
                "audio_out": audio_out,
                "latency": latency,
                "plot": plot,
                "conversation": conversation,
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
            clear.click(self.clear, [client_id], turn_outputs)
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
        return page

    def respond(
        self,
        audio_path: str | None,
        chat: list[dict[str, Any]],
        voice: str,
        speed: float,
        system_prompt: str,
        client_id: str,
        conversation: Conversation,
    ) -> Iterator[Update]:
        """Run one turn, streaming the chat text, the audio and the status to the page."""
        out = self.outputs
        turn_number, cancel = self.live.begin_turn(client_id)
        to_socket = self.settings.server.playback == "websocket" and self.live.connected(client_id)
        chat = list(chat or [])
        if not audio_path:
            yield {out["status"]: "⚠️ Record or upload a question first."}
            return
        yield {out["status"]: "Listening…", out["audio_out"]: None}
        chunks: list[audio.AudioChunk] = []
        try:
            samples = self.pipeline.load_audio(audio_path)
            request = TurnRequest(
                audio=samples,
                history=conversation["history"],
                system_prompt=system_prompt,
                voice=voice,
                speed=speed,
            )
            for event in self.pipeline.run(request, cancel):
                if isinstance(event, Heard):
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
                    yield self._finish(event, chat, chunks, conversation, to_socket)
        except VoxloopError as err:
            gr.Warning(str(err))
            yield {out["status"]: f"⚠️ {err}"}
        except Exception as err:  # a bug: keep serving, show a readable line, log the details
            log.exception("turn failed")
            yield {
                out["status"]: f"⚠️ Something went wrong ({type(err).__name__}). Please try again."
            }

    def _finish(
        self,
        done: Done,
        chat: list[dict[str, Any]],
        chunks: list[audio.AudioChunk],
        conversation: Conversation,
        to_socket: bool,
    ) -> Update:
        out, turn = self.outputs, done.turn
        reply = " ".join(turn.spoken) if turn.cancelled else turn.reply
        if turn.cancelled:
            chat[-1] = {"role": "assistant", "content": (reply + " …").strip()}
        conversation = {
            "history": [
                *conversation["history"],
                {"role": "user", "content": turn.user_text},
                {"role": "assistant", "content": reply},
            ],
            "timings": [*conversation["timings"], turn.timings_ms],
        }
        update: Update = {
            out["chat"]: chat,
            out["status"]: "Stopped." if turn.cancelled else "Ready.",
            out["latency"]: latency_text(len(conversation["timings"]), turn.timings_ms),
            out["plot"]: latency_frame(conversation["timings"]),
            out["conversation"]: conversation,
        }
        if to_socket and chunks:  # the visible player gets the whole reply to replay
            whole = audio.join_chunks(chunks)
            update[out["audio_out"]] = (whole.sample_rate, whole.pcm)
        return update

    def stop(self, client_id: str) -> str:
        """Stop the running turn and its audio."""
        self.live.stop(client_id)
        return "Stopped."

    def clear(self, client_id: str) -> Update:
        """Forget the conversation and start a new one."""
        self.live.stop(client_id)
        out = self.outputs
        return {
            out["chat"]: [],
            out["status"]: "New conversation.",
            out["audio_out"]: None,
            out["latency"]: "",
            out["plot"]: None,
            out["conversation"]: new_conversation(),
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
