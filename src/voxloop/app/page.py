"""The page's layout, and its events wired to the turn handlers and the Memory panel."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import gradio as gr

from voxloop import audio, tts
from voxloop.app.handlers import ChatView, TurnHandlers
from voxloop.app.latency import SEGMENT_COLORS
from voxloop.app.memory_panel import MemoryPanel, PanelParts
from voxloop.config import Settings
from voxloop.live import LiveSessions
from voxloop.memory import Memory
from voxloop.pipeline import Pipeline
from voxloop.prompts import PERSONAS

HANDSFREE_POLL_SECONDS = 0.5
CUSTOM_PERSONA = "custom"
DEFAULT_PERSONA = "assistant"
SPEED_RANGE = (0.5, 2.0)  # the speaking speed slider's ends
SPEED_STEP = 0.05
SECRET_BYTES = 32  # the browser secret's randomness
# System fonts only: Gradio's default theme would fetch fonts from Google.
THEME = gr.themes.Soft(
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
)
CSS = "#latency p { font-variant-numeric: tabular-nums; }"
# The record button's recorder: Gradio decodes, re-encodes and uploads the recording when the
# person presses stop, on the cores that answer them. At speech-to-text's own rate (not 44.1 kHz)
# and without a live waveform to draw, the answer is heard ~90 ms sooner (docs/benchmarks.md).
RECORDER = gr.WaveformOptions(sample_rate=audio.SAMPLE_RATE, show_recording_waveform=False)
SESSION_KEY = "voxloop_session"  # where the page keeps its person's id (browser storage)
INTRO = (
    "## voxloop\nSpeak or upload a question: the answer is spoken as it is "
    "written. Everything runs on this computer."
)


def browser_secret(settings: Settings) -> str:
    """The key that seals the person's id in the browser; kept, so restarts do not lose it."""
    path = settings.data_dir / "browser-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(SECRET_BYTES))
        path.chmod(0o600)
    return path.read_text().strip()


def pick_persona(persona: str, current: str) -> str:
    """Fill the system prompt from a preset (a custom prompt is left as it is)."""
    return PERSONAS[persona].system_prompt if persona in PERSONAS else current


@dataclass(frozen=True)
class MemoryLayout:
    """The Memory panel's parts: what it shows, and its buttons."""

    parts: PanelParts
    fact_save: gr.Button
    fact_delete: gr.Button
    forget: gr.Button


@dataclass(frozen=True)
class Layout:
    """Every part of the page that an event reads, writes or is triggered by."""

    client_id: gr.Textbox
    session: gr.BrowserState
    chat_view: ChatView
    audio_in: gr.Audio
    send: gr.Button
    stop: gr.Button
    clear: gr.Button
    voice: gr.Dropdown
    speed: gr.Slider
    persona: gr.Dropdown
    system_prompt: gr.Textbox
    memory: MemoryLayout


class VoiceChat:
    """The page: its layout, the turn handlers and the Memory panel, wired together."""

    def __init__(
        self, settings: Settings, pipeline: Pipeline, live: LiveSessions, memory: Memory
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.live = live
        self.memory = memory

    def build(self) -> gr.Blocks:
        """Lay out the page and wire its events."""
        with gr.Blocks(title="voxloop") as page:
            layout = _layout(self.settings)
            self._wire(page, layout)
        page.queue(max_size=self.settings.server.max_page_queue)  # then "Queue is full, ..."
        return page

    def _wire(self, page: gr.Blocks, layout: Layout) -> None:
        """Connect the page's events to their handlers (in this order: it names them)."""
        view = layout.chat_view
        panel = MemoryPanel(self.memory, self.live, view, layout.memory.parts)
        turns = TurnHandlers(self.settings, self.pipeline, self.live, self.memory, view, panel.view)
        turn_outputs = view.outputs() + layout.memory.parts.outputs()
        _wire_turns(layout, turns, turn_outputs)
        _wire_memory_panel(layout, panel, turn_outputs)
        _wire_page(page, layout, turns, panel)


def _wire_turns(layout: Layout, turns: TurnHandlers, turn_outputs: list[Any]) -> None:
    """Send or the end of a recording runs a turn; Stop or a new recording stops it."""
    view = layout.chat_view
    turn_inputs = [
        layout.audio_in,
        view.chat,
        layout.voice,
        layout.speed,
        layout.system_prompt,
        layout.client_id,
        layout.session,
        view.timings,
    ]
    # One turn at a time: the engines are shared, and one turn already gives them all the
    # threads they are set to use (stt.threads, llm.threads); a second would slow both. A
    # turn that starts as a recording stops may have its transcript streamed already.
    for trigger, respond in (
        (layout.audio_in.stop_recording, turns.respond_recorded),
        (layout.send.click, turns.respond),
    ):
        trigger(
            respond,
            turn_inputs,
            turn_outputs,
            concurrency_id="turn",
            show_progress="minimal",
        )
    layout.audio_in.start_recording(turns.stop, [layout.client_id], [view.status])
    layout.stop.click(turns.stop, [layout.client_id], [view.status])
    layout.clear.click(turns.clear, [layout.client_id, layout.session], turn_outputs)


def _wire_memory_panel(layout: Layout, panel: MemoryPanel, turn_outputs: list[Any]) -> None:
    """The Memory panel's facts, its Forget button and its past conversations."""
    client_id, session, memory = layout.client_id, layout.session, layout.memory
    facts, fact_text = memory.parts.facts, memory.parts.fact_text
    memory_view = memory.parts.outputs()
    facts.input(panel.pick_fact, [facts], [fact_text])
    memory.fact_save.click(panel.save_fact, [session, facts, fact_text], memory_view)
    memory.fact_delete.click(panel.delete_fact, [session, facts], memory_view)
    memory.forget.click(panel.forget, [client_id, session], turn_outputs)
    conversations = memory.parts.conversations
    conversations.input(panel.reopen, [client_id, session, conversations], turn_outputs)


def _wire_page(page: gr.Blocks, layout: Layout, turns: TurnHandlers, panel: MemoryPanel) -> None:
    """The persona presets, the hands-free chat, and what happens when the page loads."""
    client_id, session, view = layout.client_id, layout.session, layout.chat_view
    chat = view.chat
    persona, system_prompt = layout.persona, layout.system_prompt
    persona.change(pick_persona, [persona, system_prompt], [system_prompt])
    # Hands-free turns happen over the page's WebSocket (see handsfree.py); the chat and
    # the latency readout follow them by polling the session.
    shown_version, shown_turn = gr.State(-1), gr.State(0)
    gr.Timer(HANDSFREE_POLL_SECONDS).tick(
        turns.follow_handsfree,
        [client_id, shown_version, view.timings, shown_turn],
        [chat, shown_version, view.latency, view.plot, view.timings, shown_turn],
        show_progress="hidden",
    )
    system_prompt.input(lambda _: CUSTOM_PERSONA, [system_prompt], [persona])
    page.load(None, None, [client_id], js="() => window.voxloop && window.voxloop.clientId")
    page.load(panel.open_page, [session], [session, chat, *layout.memory.parts.outputs()])
    # Hands-free turns (over the page's socket) belong to the same person.
    client_id.change(turns.link_page, [client_id, session], None)


def _layout(settings: Settings) -> Layout:
    """Create the page's parts, in the order they appear."""
    client_id = gr.Textbox(visible=False, elem_id="client_id")
    # The person, per browser: reloading the page continues their conversation.
    session = gr.BrowserState(None, storage_key=SESSION_KEY, secret=browser_secret(settings))
    timings = gr.State(list)
    gr.Markdown(INTRO)
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
            _handsfree_controls(settings)
            audio_in = gr.Audio(
                sources=["microphone", "upload"],
                type="filepath",
                elem_id="audio_in",
                label="Your question",
                waveform_options=RECORDER,
            )
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="send")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
                clear = gr.Button("New conversation", elem_id="clear")
            voice = _voice_picker(settings)
            speed = gr.Slider(
                *SPEED_RANGE,
                value=settings.tts.speed,
                step=SPEED_STEP,
                label="Speaking speed",
                elem_id="speed",
            )
            persona = gr.Dropdown(
                [(p.name, p.id) for p in PERSONAS.values()] + [("Custom", CUSTOM_PERSONA)],
                value=DEFAULT_PERSONA,
                label="Persona",
                elem_id="persona",
            )
            system_prompt = gr.Textbox(
                PERSONAS[DEFAULT_PERSONA].system_prompt,
                lines=4,
                label="System prompt",
                elem_id="system_prompt",
            )
            latency = gr.Markdown(elem_id="latency")
            plot = _latency_plot()
            memory = _memory_panel()
    return Layout(
        client_id=client_id,
        session=session,
        chat_view=ChatView(chat, status, audio_out, latency, plot, timings),
        audio_in=audio_in,
        send=send,
        stop=stop,
        clear=clear,
        voice=voice,
        speed=speed,
        persona=persona,
        system_prompt=system_prompt,
        memory=memory,
    )


def _handsfree_controls(settings: Settings) -> None:
    """The hands-free conversation's button, wake phrase switch and live state (page JS runs it)."""
    with gr.Group():
        gr.Button("Start conversation", variant="primary", elem_id="talk")
        gr.Checkbox(
            label=f"Wake phrase: wait for “{settings.handsfree.wake_phrase}”",
            elem_id="wake",
        )
        gr.HTML('<div id="live_state"></div><div id="live_transcript"></div>', elem_id="live")


def _voice_picker(settings: Settings) -> gr.Dropdown:
    """Every installed voice, with its gender, language and engine."""
    return gr.Dropdown(
        [(f"{v.id} ({v.gender}, {v.language}, {v.engine})", v.id) for v in tts.catalog()],
        value=settings.tts.voice,
        label="Voice",
        elem_id="voice",
    )


def _latency_plot() -> gr.BarPlot:
    """Recent turns' stage timings, stacked."""
    return gr.BarPlot(
        None,
        x="turn",
        y="ms",
        color="stage",
        label="Latency of recent turns (ms)",
        elem_id="latency_plot",
        height=360,
        color_map=SEGMENT_COLORS,
    )


def _memory_panel() -> MemoryLayout:
    """The Memory panel's accordion: facts to pick, edit or delete; past conversations."""
    with gr.Accordion("Memory", open=False, elem_id="memory"):
        facts = gr.Radio([], label="What voxloop knows about you", elem_id="facts")
        fact_text = gr.Textbox(
            label="Fact (pick one to edit it, or type a new one)", elem_id="fact_text"
        )
        with gr.Row():
            fact_save = gr.Button("Save", elem_id="fact_save")
            fact_delete = gr.Button("Delete", elem_id="fact_delete")
            forget = gr.Button("Forget everything", variant="stop", elem_id="forget")
        conversations = gr.Radio(
            [], label="Past conversations (pick one to continue it)", elem_id="conversations"
        )
    return MemoryLayout(PanelParts(facts, conversations, fact_text), fact_save, fact_delete, forget)
