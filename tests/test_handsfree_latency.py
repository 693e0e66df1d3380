"""Hands-free turns feed the page's latency line and plot, as the other turns do: the door
keeps each finished turn's timings, and the page's timer merges them in once."""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import numpy as np

from voxloop import audio
from voxloop.app.handlers import ChatView, TurnHandlers
from voxloop.config import Settings
from voxloop.handsfree import HandsFree, Options
from voxloop.live import LiveSessions
from voxloop.memory import Memory
from voxloop.pipeline import Pipeline
from voxloop_bench import feed_like_a_microphone

ANSWER_WITHIN_SECONDS = 300  # loading the models and answering, on a busy machine
CLIENT = "page"
BUTTON_TURN = {"stt": 150.0, "llm_first_token": 400.0, "first_audio": 600.0, "total": 2000.0}


def test_a_handsfree_turn_reaches_the_latency_line_and_plot_once(
    settings: Settings, spoken, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(settings)
    live = LiveSessions()
    session = HandsFree(pipeline, live, CLIENT, Options())
    live.get(CLIENT).handsfree = session
    view = ChatView(
        gr.Chatbot(), gr.Markdown(), gr.Audio(), gr.Markdown(), gr.BarPlot(), gr.State()
    )
    memory = Memory(tmp_path / "memory.db", settings.memory)
    page = TurnHandlers(settings, pipeline, live, memory, view, lambda _session: {})
    question = audio.load(spoken("What is the capital of France?"))
    silence = np.zeros(audio.SAMPLE_RATE, np.float32)
    feed_like_a_microphone(session.feed, np.concatenate([silence, question, silence]))
    deadline = time.monotonic() + ANSWER_WITHIN_SECONDS
    while not session.timings or session.conversation.busy():
        assert time.monotonic() < deadline, "no hands-free turn finished"
        time.sleep(0.2)
    session.close()

    # A page that showed one button turn before: the hands-free turn is its second.
    chat, version, line, plot, timings, shown_turn = page.follow_handsfree(
        CLIENT, -1, [BUTTON_TURN], 0
    )
    assert "capital of france" in chat[0]["content"].lower()
    assert line.startswith("Turn 2:") and "first audio" in line, line
    assert timings[0] == BUTTON_TURN and "first_audio" in timings[1], timings
    assert set(plot["turn"]) == {"1", "2"}
    assert shown_turn == session.timings[-1][0]
    # Polled again with nothing new: the page keeps what it shows.
    again = page.follow_handsfree(CLIENT, version, timings, shown_turn)
    assert all(part == gr.skip() for part in again), again
    # The chat changed but no turn finished: the latency stays as it is.
    changed = page.follow_handsfree(CLIENT, -1, timings, shown_turn)
    assert changed[0] == chat and all(part == gr.skip() for part in changed[2:]), changed
