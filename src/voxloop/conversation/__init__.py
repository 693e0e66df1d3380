"""The conversation engine: a spoken conversation, independent of the door it comes through.

A door (the page's WebSocket, the OpenAI Realtime API) feeds it microphone audio and turns its
events (events.py) into its own protocol. The parts, one job each: turn detection (vad.py),
prepared answers (prepared.py), playback accounting for barge-in (playback.py), the echo filter
(echo.py) and the wake phrase (wake_gate.py), run together by engine.py.
"""

from voxloop.conversation.engine import Conversation, Options, TurnStarter, own_turns
from voxloop.conversation.events import (
    Event,
    Failed,
    ReplyAudio,
    ReplyDone,
    ReplyInterrupted,
    ReplyStarted,
    ReplyWritten,
    SpeechStopped,
    StateChanged,
    TranscriptUpdated,
)

__all__ = [
    "Conversation", "Event", "Failed", "Options", "ReplyAudio", "ReplyDone", "ReplyInterrupted",
    "ReplyStarted", "ReplyWritten", "SpeechStopped", "StateChanged", "TranscriptUpdated",
    "TurnStarter", "own_turns",
]  # fmt: skip
