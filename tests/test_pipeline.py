"""The streaming turn with the real engines: ordering, overlap, cancellation, timings."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from voxloop import audio
from voxloop.errors import ConfigError, NoSpeech
from voxloop.memory import Memory
from voxloop.pipeline import Pipeline
from voxloop.turns import Done, Event, Heard, Release, ReplyText, Speech, TurnRequest
from voxloop_bench.recordings import normalize

LONG_QUESTION = "Tell me about the city of Paris in five sentences."


def _events(pipeline: Pipeline, request: TurnRequest, cancel=None) -> list[Event]:  # type: ignore[no-untyped-def]
    return list(pipeline.run(request, cancel))


def test_spoken_question_gets_a_spoken_answer(pipeline: Pipeline, spoken) -> None:  # type: ignore[no-untyped-def]
    question = audio.load(spoken("What is the capital of France?"))
    events = _events(pipeline, TurnRequest(audio=question))
    assert isinstance(events[0], Heard) and "capital of france" in events[0].text.lower()
    turn = events[-1].turn  # type: ignore[union-attr]
    assert isinstance(events[-1], Done) and "paris" in turn.reply.lower()
    speech = [e for e in events if isinstance(e, Speech)]
    assert speech and all(len(e.chunk.pcm) > 0 for e in speech)
    assert set(turn.timings_ms) == {"stt", "llm_first_token", "first_audio", "total"}
    assert turn.timings_ms["stt"] <= turn.timings_ms["llm_first_token"]
    assert turn.timings_ms["llm_first_token"] <= turn.timings_ms["first_audio"]


def test_audio_starts_while_the_model_is_still_writing(pipeline: Pipeline) -> None:
    events = _events(pipeline, TurnRequest(text=LONG_QUESTION))
    first_speech = next(i for i, e in enumerate(events) if isinstance(e, Speech))
    last_text = max(i for i, e in enumerate(events) if isinstance(e, ReplyText))
    assert first_speech < last_text, "first audio should come before the reply is complete"
    chunks = [e.text for e in events if isinstance(e, Speech)]
    spoken_texts = list(dict.fromkeys(chunks))
    assert len(spoken_texts) >= 3
    # the first piece is cut early, by a clause end or after `first_chunk_words` words
    assert len(spoken_texts[0].split()) <= pipeline.settings.tts.first_chunk_words
    turn = events[-1].turn  # type: ignore[union-attr]
    # everything the model wrote was spoken, in order
    assert normalize(" ".join(turn.spoken)) == normalize(turn.reply)


def test_the_reply_starts_with_its_first_word_not_with_silence(pipeline: Pipeline) -> None:
    """The voices open with 40-60 ms of silence; the reply keeps `tts.lead_in_ms` of it."""
    events = _events(pipeline, TurnRequest(text="What is the capital of France?"))
    first = next(e.chunk for e in events if isinstance(e, Speech))
    loud = np.flatnonzero(np.abs(first.pcm.astype(np.int32)) > audio.SILENCE_PEAK * audio.INT16_MAX)
    lead_in_ms = loud[0] * 1000 / first.sample_rate
    assert lead_in_ms <= pipeline.settings.tts.lead_in_ms + 1, lead_in_ms


def test_a_written_only_turn_is_answered_without_speech(pipeline: Pipeline) -> None:
    events = _events(pipeline, TurnRequest(text="What is the capital of France?", speak=False))
    turn = events[-1].turn  # type: ignore[union-attr]
    assert not any(isinstance(e, Speech) for e in events)
    assert "paris" in turn.reply.lower() and "first_audio" not in turn.timings_ms


def test_cancel_stops_generation_and_audio(pipeline: Pipeline) -> None:
    full = _events(pipeline, TurnRequest(text=LONG_QUESTION))
    cancel = threading.Event()
    events: list[Event] = []
    for event in pipeline.run(TurnRequest(text=LONG_QUESTION), cancel):
        events.append(event)
        if isinstance(event, Speech):
            cancel.set()
    done = events[-1]
    assert isinstance(done, Done) and done.turn.cancelled
    assert sum(isinstance(e, Speech) for e in events) == 1, "no audio after cancel"
    assert len(done.turn.reply) < len(full[-1].turn.reply)  # type: ignore[union-attr]


def test_abandoning_the_stream_stops_the_worker(pipeline: Pipeline) -> None:
    stream = pipeline.run(TurnRequest(text=LONG_QUESTION))
    for event in stream:
        if isinstance(event, ReplyText):
            break
    stream.close()
    assert not any(t.name == "voxloop-llm" and t.is_alive() for t in threading.enumerate())
    # the next turn runs normally
    next_turn = _events(pipeline, TurnRequest(text="What is the capital of France?"))[-1]
    assert "paris" in next_turn.turn.reply.lower()  # type: ignore[union-attr]


def test_history_is_given_to_the_model(pipeline: Pipeline) -> None:
    history = [
        {"role": "user", "content": "My favourite colour is green."},
        {"role": "assistant", "content": "Noted, green it is."},
    ]
    events = _events(
        pipeline,
        TurnRequest(text="What is my favourite colour?", history=history),  # type: ignore[arg-type]
    )
    assert "green" in events[-1].turn.reply.lower()  # type: ignore[union-attr]


def test_empty_text_and_unknown_voice_fail_before_any_work(pipeline: Pipeline) -> None:
    with pytest.raises(NoSpeech):
        _events(pipeline, TurnRequest(text="   "))
    with pytest.raises(ConfigError):
        _events(pipeline, TurnRequest(text="Hi", voice="nobody"))


def test_a_model_server_gets_no_prompts_evaluated_ahead(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Evaluating ahead pays only where one context keeps the prefix (in process); a model
    # server would get a stray request per partial transcript (here: none listens at all).
    from voxloop.config import load_settings
    from voxloop_bench import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    remote = Pipeline(load_settings(data_dir=tmp_path, llm={"backend": "openai", "base_url": url}))
    assert not remote.chat_model.keeps_prefix
    remote.prime_turn(TurnRequest(), "What is the capital")  # returns without a request


class _Held:
    """A turn run in a thread as one prepared in a pause: held until released or cancelled."""

    def __init__(self, pipeline: Pipeline, request: TurnRequest) -> None:
        self.release, self.cancel = Release(), threading.Event()
        self.written = threading.Event()  # some of the reply is written
        self.events: list[Event] = []
        request.release = self.release
        self._thread = threading.Thread(target=self._run, args=(pipeline, request), daemon=True)
        self._thread.start()

    def _run(self, pipeline: Pipeline, request: TurnRequest) -> None:
        for event in pipeline.run(request, self.cancel):
            self.events.append(event)
            if isinstance(event, ReplyText):
                self.written.set()

    def end(self, flag: threading.Event) -> list[Event]:
        """Set `flag` (release or cancel); the turn's events once it is over."""
        flag.set()
        self._thread.join(60)
        return self.events


def test_a_prepared_turn_is_heard_once_released_and_never_once_cancelled(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    own = Pipeline(pipeline.settings, Memory(tmp_path / "memory.db"))
    question = "What is the capital of France?"
    for then in ("release", "cancel"):
        held = _Held(own, TurnRequest(text=question, session="me"))
        assert held.written.wait(60), "a prepared turn writes its reply ahead"
        time.sleep(0.5)  # its first sound is made, and waits
        assert not any(isinstance(e, Speech) for e in held.events), "heard before release"
        events = held.end(held.release if then == "release" else held.cancel)
        if then == "release":
            assert any(isinstance(e, Speech) for e in events) and isinstance(events[-1], Done)
            assert "paris" in events[-1].turn.reply.lower()
            # Its stages count from its release: what was done ahead took no time.
            assert events[-1].turn.timings_ms["llm_first_token"] == 0.0
        else:
            assert not any(isinstance(e, Speech | Done) for e in events)
    assert len(own.memory.recall("me").history) == 2  # type: ignore[union-attr]  # one exchange


def test_a_prepared_timer_is_set_only_once_released(tmp_path: Path, pipeline: Pipeline) -> None:
    memory = Memory(tmp_path / "memory.db")
    own = Pipeline(pipeline.settings, memory)
    asked = "Set a timer for five minutes."
    dropped = _Held(own, TurnRequest(text=asked, session="me"))
    time.sleep(1.0)  # a skill answers in milliseconds
    assert memory.running_timers("me") == [], "set before the person had finished"
    assert not any(isinstance(e, Speech | Done) for e in dropped.end(dropped.cancel))
    assert memory.running_timers("me") == []
    released = _Held(own, TurnRequest(text=asked, session="me"))
    events = released.end(released.release)
    assert isinstance(events[-1], Done) and "5 minutes" in events[-1].turn.reply
    assert len(memory.running_timers("me")) == 1
