"""Hands-free behaviours through the whole loop, fed as microphone audio to the real engines:
its own reply coming back is not answered, an answer prepared during a pause is dropped when
the person goes on speaking, and the wake phrase keeps it awake for a while, then not."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from test_handsfree import RecordingLive, _microphone, _wait
from voxloop import audio
from voxloop.audio import AudioChunk
from voxloop.config import Settings
from voxloop.conversation.echo import is_echo
from voxloop.handsfree import HandsFree, Options
from voxloop.pipeline import Pipeline
from voxloop_bench import feed_like_a_microphone

QUESTION = "What is the capital of France?"
FOLLOW_UP = "What is the capital of Italy?"  # most of its words are in the reply to QUESTION
PAUSE_SECONDS = 0.8  # between speculate_ms and the longer silence_ms below: a pause, not an end
SILENCE_MS = 1500
AWAKE_SECONDS = 300.0  # far more than a follow-up takes on a busy machine
ASLEEP_AFTER_SECONDS = 1.0  # a window that has surely closed after EXPIRY_WAIT_SECONDS
EXPIRY_WAIT_SECONDS = 3.0
ANSWER_WITHIN_SECONDS = 300  # loading the models and answering, on a busy machine


class TrackingLive(RecordingLive):
    """RecordingLive that also keeps the reply audio and each turn's cancel flag, and notes
    a turn begun while an earlier one still runs (a prepared answer not dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[AudioChunk] = []
        self.audio_turns: set[int] = set()
        self.cancels: list[threading.Event] = []
        self.begun_over_running: list[int] = []

    def begin_turn(self, client_id: str) -> tuple[int, threading.Event]:
        """Begin a turn, noting whether an earlier one had not been cancelled yet."""
        if any(not cancel.is_set() for cancel in self.cancels):
            self.begun_over_running.append(len(self.cancels) + 1)
        number, cancel = super().begin_turn(client_id)
        self.cancels.append(cancel)
        return number, cancel

    def send_audio(self, client_id: str, turn: int, chunk: AudioChunk) -> None:
        """Keep the reply's audio as the page would play it."""
        super().send_audio(client_id, turn, chunk)
        self.chunks.append(chunk)
        self.audio_turns.add(turn)


def _states(live: RecordingLive, value: str, since: int = 0) -> int:
    """How many times the session told the page it is in state `value` (since message `since`)."""
    messages = live.messages[since:]
    return sum(1 for m in messages if m["type"] == "state" and m.get("value") == value)


def _users(session: HandsFree) -> list[str]:
    return _said(session, "user")


def _replies(session: HandsFree) -> list[str]:
    return _said(session, "assistant")


def _said(session: HandsFree, role: str) -> list[str]:
    return [m["content"].lower() for m in session.conversation.history if m["role"] == role]


def test_its_own_reply_coming_back_is_not_answered_but_the_person_reusing_its_words_is(
    settings: Settings,
    spoken: Any,
) -> None:
    live = TrackingLive()
    session = HandsFree(Pipeline(settings), live, "echo", Options())
    feed_like_a_microphone(session.feed, _microphone([0.5, spoken(QUESTION), 1.0]), real_time=False)
    _wait(
        lambda: len(session.conversation.history) >= 2 and not session.conversation.busy(),
        ANSWER_WITHIN_SECONDS,
    )
    reply = audio.join_chunks(live.chunks)
    echo = audio.to_mono_16k(reply.pcm, reply.sample_rate)  # the speaker, heard by the mic
    since = len(live.messages)
    silence = np.zeros(audio.SAMPLE_RATE, np.float32)
    feed_like_a_microphone(session.feed, np.concatenate([silence, echo, silence]), real_time=False)
    # The echo's utterance is over once it is dropped ("listening") or answered ("thinking").
    decided = ("listening", "thinking")
    _wait(lambda: any(_states(live, s, since) for s in decided), ANSWER_WITHIN_SECONDS)
    _wait(lambda: not session.conversation.busy(), ANSWER_WITHIN_SECONDS)
    # Then, once our voice has surely stopped, the person asks again with the reply's words:
    # answered, while the echo before it was not.
    time.sleep(settings.handsfree.echo_seconds + 0.5)
    feed_like_a_microphone(session.feed, _microphone([1.0, spoken(FOLLOW_UP), 1.0]), False)
    _wait(lambda: len(session.conversation.history) >= 4, ANSWER_WITHIN_SECONDS)
    session.close()
    users, replies = _users(session), _replies(session)
    assert len(users) == 2 and "italy" in users[1], f"echo answered or follow-up dropped: {users}"
    assert "capital" in users[0], users
    assert _states(live, "hearing", since) >= 2, "the echo was heard as speech"
    # By its words alone the follow-up would pass for our reply: only its timing tells.
    assert is_echo(users[1], replies[0], settings.handsfree.echo_overlap), replies


def test_an_answer_prepared_during_a_pause_is_dropped_when_the_person_goes_on(
    settings: Settings,
    spoken: Any,
) -> None:
    patient = settings.model_copy(
        update={"vad": settings.vad.model_copy(update={"silence_ms": SILENCE_MS})}
    )
    live = TrackingLive()
    session = HandsFree(Pipeline(patient), live, "pause", Options())
    first, rest = spoken("What is the capital of France"), spoken("and what about Germany?")
    feed_like_a_microphone(session.feed, _microphone([0.5, first, PAUSE_SECONDS, rest, 2.5]), False)
    _wait(lambda: len(session.conversation.history) >= 2, ANSWER_WITHIN_SECONDS)
    session.close()
    assert len(live.cancels) >= 2 and live.cancels[0].is_set(), "an answer was prepared early"
    assert live.begun_over_running == [], "a prepared answer ran on after speech resumed"
    assert live.audio_turns == {len(live.cancels)}, "only the last answer is spoken"
    users = _users(session)
    assert len(users) == 1 and "france" in users[0] and "germany" in users[0], users
    assert [m["role"] for m in session.chat] == ["user", "assistant"]


def _wake_then_ask(
    settings: Settings,
    clearly_spoken: Any,
    awake_seconds: float,
    wait_seconds: float,
) -> tuple[HandsFree, list[dict[str, Any]]]:
    """In wake mode: the bare wake phrase, `wait_seconds`, then a question without it; returns
    once the question is answered or the session went back to sleep, with the messages sent
    to the page since it woke."""
    awake = settings.model_copy(
        update={"handsfree": settings.handsfree.model_copy(update={"awake_seconds": awake_seconds})}
    )
    live = RecordingLive()
    session = HandsFree(Pipeline(awake), live, "wake", Options(wake=True))
    feed_like_a_microphone(
        session.feed, _microphone([0.5, clearly_spoken("Hey computer."), 1.0]), False
    )
    _wait(
        lambda: _states(live, "awake") >= 1 or session.conversation.history, ANSWER_WITHIN_SECONDS
    )
    assert session.conversation.history == [], "the bare phrase is not a question"
    woke = len(live.messages)  # "asleep" may come before: while the phrase was being heard
    time.sleep(wait_seconds)
    feed_like_a_microphone(session.feed, _microphone([0.5, clearly_spoken(QUESTION), 1.0]), False)
    _wait(
        lambda: len(session.conversation.history) >= 2 or _states(live, "asleep", woke) > 0,
        ANSWER_WITHIN_SECONDS,
    )
    session.close()
    return session, live.messages[woke:]


def test_a_follow_up_within_the_awake_window_needs_no_wake_phrase(
    settings: Settings,
    clearly_spoken: Any,
) -> None:
    session, since_awake = _wake_then_ask(settings, clearly_spoken, AWAKE_SECONDS, 0.0)
    assert len(session.conversation.history) >= 2, since_awake
    assert {"type": "state", "value": "asleep"} not in since_awake
    assert "capital of france" in _users(session)[0]
    assert "paris" in session.conversation.history[1]["content"].lower()


def test_after_the_awake_window_a_question_needs_the_wake_phrase_again(
    settings: Settings,
    clearly_spoken: Any,
) -> None:
    session, since_awake = _wake_then_ask(
        settings, clearly_spoken, ASLEEP_AFTER_SECONDS, EXPIRY_WAIT_SECONDS
    )
    assert {"type": "state", "value": "asleep"} in since_awake, since_awake
    assert session.conversation.history == [], session.conversation.history
