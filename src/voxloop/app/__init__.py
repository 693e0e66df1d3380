"""The Gradio page: speak or upload a question, hear the answer while it is being written.

Element ids (stable, the browser tests use them): audio_in, chat, audio_out, voice, persona,
send, stop, clear; also speed, system_prompt, status, latency, latency_plot, and for hands-free
talk, wake, live_state, live_transcript; the Memory panel: memory, facts, fact_text, fact_save,
fact_delete, forget, conversations.

page.py lays the page out and wires its events, handlers.py handles the turns, memory_panel.py
the Memory panel, latency.py the latency readout.
"""

from voxloop.app.latency import PLOTTED_TURNS, SEGMENTS, latency_frame
from voxloop.app.page import CSS, THEME, VoiceChat

__all__ = ["CSS", "PLOTTED_TURNS", "SEGMENTS", "THEME", "VoiceChat", "latency_frame"]
