"""One streaming turn: audio -> transcript -> LLM tokens -> speakable chunks -> audio chunks.

The language model runs in a worker thread, so it keeps generating while the first chunk is
being synthesized and played. Every stage stamps `time.perf_counter()` into the Turn.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voxloop import audio as audio_files
from voxloop import longform, scheduling, skills, vad
from voxloop.audio import MS_PER_SECOND, SECONDS_PER_MINUTE, AudioChunk
from voxloop.config import Settings
from voxloop.errors import BackendDown, BadText, NoSpeech, VoxloopError
from voxloop.llm import ChatModel, Message, Sampling, Usage, get_chat_model
from voxloop.metrics import Metrics
from voxloop.prompts import (
    DEFAULT_SYSTEM_PROMPT,
    Utterance,
    build_messages,
    clarifying_question,
    classify,
    estimate_tokens,
    language_note,
    summary_messages,
    with_hint,
)
from voxloop.stt import Transcript, get_transcriber
from voxloop.text import SpeechChunker, until_repeated
from voxloop.tts import find_voice, synthesize, voice_for_language
from voxloop.turns import Done, Event, Heard, ReplyText, Speech, Turn, TurnRequest

if TYPE_CHECKING:
    from voxloop.memory import Memory

log = logging.getLogger("voxloop.pipeline")
Writer = Callable[[threading.Event], Iterator[str]]  # the stop flag -> reply text pieces
WORKER_JOIN_SECONDS = 2.0
RELEASE_POLL_SECONDS = 0.01  # a prepared turn looks this often whether it was cancelled
LLM_APOLOGY = "Sorry, I cannot reach my language model right now. Please try again in a moment."
PROMPT_MESSAGES = 2  # stt.conversation_prompt: the last question and reply prime Whisper


@dataclass
class _Run:
    """One turn's state on its way through the pipeline's steps (one object, not the same
    arguments passed from step to step)."""

    request: TurnRequest
    turn: Turn
    cancel: threading.Event  # set: stop the turn
    speed: float | None = None  # the reply's speaking rate; None: it is only written
    # Held while speech is synthesized, so the model's worker pauses meanwhile.
    synthesizing: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.perf_counter)
    # Called when the person has their first audio (or the turn ends): bulk work waits until then.
    heard_first: Callable[[], None] = lambda: None

    def stamp(self, stage: str) -> None:
        """Note when `stage` was first reached, in ms since the turn started."""
        self.turn.timings_ms.setdefault(stage, (time.perf_counter() - self.started) * MS_PER_SECOND)

    def released(self) -> bool:
        """Whether the turn may go on to be heard and act: at once unless it was prepared
        ahead (`request.release`), else once released (True, though it may be stopped since, as
        any turn) or cancelled first (False: nobody heard it)."""
        release = self.request.release
        if release is None:
            return True
        while not release.wait(RELEASE_POLL_SECONDS):
            if self.cancel.is_set():
                return False
        self._count_from(release.at or time.perf_counter())
        return True

    def _count_from(self, released_at: float) -> None:
        """Count the turn's stages from its release: stages reached before it took no time."""
        if released_at <= self.started:
            return
        ahead_ms = (released_at - self.started) * MS_PER_SECOND
        timings = self.turn.timings_ms
        self.turn.timings_ms = {stage: max(0.0, ms - ahead_ms) for stage, ms in timings.items()}
        self.started = released_at


class Pipeline:
    """The engines of one process, shared by every session; sessions pass their own state."""

    def __init__(
        self, settings: Settings, memory: Memory | None = None, prime_after_turn: bool = True
    ) -> None:
        self.settings = settings
        self.memory = memory
        self.prime_after_turn = prime_after_turn  # worth it in a server, not in a one-shot CLI
        self.metrics = Metrics()
        self.llm_problem: str | None = None  # why the model last failed, until it answers again
        self._upkeep: threading.Thread | None = None

    @property
    def chat_model(self) -> ChatModel:
        """The configured language model (loaded on first use)."""
        return get_chat_model(self.settings)

    def warm_up(self, voice: str | None = None, system_prompt: str | None = None) -> None:
        """Load every engine a turn needs now, so the first turn is as fast as the rest."""
        get_transcriber(self.settings)
        vad.find_speech(np.zeros(vad.FRAME_SAMPLES, np.float32), self.settings.vad)
        try:
            self.prime(build_messages(system_prompt or self.settings.system_prompt, [], "Hello."))
        except BackendDown as err:  # a model server may start later; turns apologize until then
            self.llm_problem = str(err)
            log.warning("%s Turns will apologize until it answers.", err)
        for _chunk in synthesize(
            "Ready.", voice or self.settings.tts.voice, cache_dir=self.settings.cache_dir
        ):
            pass

    def prime(self, messages: list[Message]) -> None:
        """Evaluate a prompt now (one token), so a turn that starts with it answers sooner.

        llama.cpp reuses the longest prefix it has already evaluated.
        """
        for _piece in self.chat_model.stream(messages, max_tokens=1):
            pass

    def complete(self, messages: list[Message], max_tokens: int) -> str:
        """The model's whole answer to `messages` (for summaries, not for speech)."""
        return "".join(self.chat_model.stream(messages, max_tokens=max_tokens)).strip()

    def summarize(self, previous_summary: str, transcript: str) -> str:
        """Fold a stretch of conversation into its running summary."""
        messages = summary_messages(previous_summary, transcript)
        return self.complete(messages, self.settings.memory.summary_max_tokens)

    def load_audio(self, source: str | Path | bytes) -> np.ndarray:
        """Decode a person's file (any format) within the configured length and size limits."""
        limits = self.settings.audio
        return audio_files.load(
            source, max_seconds=limits.max_seconds, max_megabytes=limits.max_megabytes
        )

    def is_long_recording(self, path: str | Path) -> bool:
        """Whether a file is to be summarized as a recording rather than answered as a question."""
        return longform.is_long_recording(path, self.settings)

    def transcribe(
        self,
        audio: np.ndarray,
        engine: str | None = None,
        language: str | None = None,
        prompt: str | None = None,
    ) -> Transcript:
        """Final transcript of a recording (in `language`, if given); NoSpeech if none was said.

        `prompt`: the conversation so far, which a Whisper engine takes as its initial prompt.
        """
        transcriber = get_transcriber(self.settings, engine, language)  # a bad name fails first
        speech_ms, speech = vad.find_speech(audio, self.settings.vad)
        if speech_ms < self.settings.audio.min_speech_ms:
            raise NoSpeech("No speech heard. Please speak closer to the microphone.")
        # Silence around the words costs recognition time and invites made-up words.
        transcript = transcriber.transcribe(speech, prompt)
        if not transcript.text.strip():
            raise NoSpeech("No words recognized in the recording. Please try again.")
        return transcript

    def speak(
        self, text: str, voice: str | None = None, speed: float | None = None
    ) -> Iterator[AudioChunk]:
        """Speak `text` piece by piece, a short first clause first, so sound starts early."""
        voice_id = voice or self.settings.tts.voice
        find_voice(voice_id)
        chunker = SpeechChunker(first_max_words=self.settings.tts.first_chunk_words)
        pieces = [*chunker.push(text), *chunker.flush()]
        if not pieces:
            raise BadText("There is nothing to say: the text has no speakable words.")
        for piece in pieces:
            yield from synthesize(
                piece,
                voice_id,
                cache_dir=self.settings.cache_dir,
                speed=speed or self.settings.tts.speed,
            )

    def chat(
        self,
        messages: list[Message],
        max_tokens: int,
        cancel: threading.Event | None = None,
        sampling: Sampling | None = None,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        """The configured model's reply to a whole conversation, streamed (the chat API);
        `sampling` and `usage` go to the model (see ChatModel.stream)."""
        room = self.settings.llm.context_tokens - max_tokens
        if sum(estimate_tokens(m["content"]) for m in messages) > room:
            raise BadText(
                f"The conversation is too long for the model: keep it under about {room} tokens "
                f"(the model reads {self.settings.llm.context_tokens} including its reply)."
            )
        try:
            yield from self.chat_model.stream(
                messages, max_tokens=max_tokens, cancel=cancel, sampling=sampling, usage=usage
            )
        except VoxloopError:
            raise
        except Exception as err:
            raise _unexpected(err) from err

    def run(self, request: TurnRequest, cancel: threading.Event | None = None) -> Iterator[Event]:
        """Run one turn, yielding events as they happen; set `cancel` to stop it early."""
        try:
            yield from self._run(request, cancel or threading.Event())
        except VoxloopError as err:
            self.metrics.record_error(type(err).__name__)
            raise

    def _run(self, request: TurnRequest, cancel: threading.Event) -> Iterator[Event]:
        run = _Run(request, Turn(voice=request.voice or self.settings.tts.voice), cancel)
        if request.recording is None:  # a person waits for this answer: bulk work gives way
            run.heard_first = scheduling.waiting.begin()
        try:
            yield from self._turn(run)
        finally:
            run.heard_first()

    def _turn(self, run: _Run) -> Iterator[Event]:
        request, turn, cancel = run.request, run.turn, run.cancel
        find_voice(turn.voice)  # an unknown voice fails before any work is done
        self._hear(run)
        if not turn.user_text:
            raise NoSpeech("Nothing to answer: the question is empty.")
        turn.voice = voice_in(turn.voice, turn.language)
        yield Heard(turn.user_text, turn.language)

        self.wait_for_upkeep()
        messages = self._messages(request, turn)
        if self._would_act(request, turn.user_text) and not run.released():
            return  # a prepared turn dropped: its words were not the person's last
        skill_answer = self._skill_answer(run, messages)
        if not skill_answer:
            turn.kind = classify(turn.user_text, len(messages) > 2, turn.language)
        messages[-1] = Message(role="user", content=with_hint(turn.user_text, turn.kind))
        if request.speak:
            run.speed = request.speed or self.settings.tts.speed
        write = self._writer(messages, turn, skill_answer)
        if alerts := self._missed_alerts(request):
            write = _after(alerts, write)
        try:
            yield from self._reply(write, run)
        except BackendDown as err:  # the model server went away: say so, keep the person's words
            log.warning("the language model failed: %s", err)
            self.metrics.record_error(type(err).__name__)
            turn.failed = self.llm_problem = str(err)
            yield from self._apologize(run)
        if not run.released():
            return  # prepared, then dropped before anyone heard it: nothing to keep
        turn.cancelled = cancel.is_set()
        run.stamp("total")
        self._remember(run)
        self.metrics.record_turn(turn.timings_ms, turn.outcome)
        yield Done(turn)

    def _hear(self, run: _Run) -> None:
        """The person's words (and language) into the turn: typed, transcribed, or a long
        recording transcribed and summarized."""
        request, turn = run.request, run.turn
        readings = request.readings
        if request.text is not None:
            turn.user_text = request.text.strip()
            turn.language = request.language or turn.language
        elif request.audio is not None:
            transcript = self.hear(request.audio, request)
            turn.user_text, turn.language = transcript.text, transcript.language
            readings = transcript.readings
        elif request.recording is not None:
            turn.recording = longform.process(
                request.recording, self.settings, request.progress, run.cancel
            )
            turn.user_text = _recording_title(request.recording, turn.recording)
        else:
            return
        if readings is not None and self.settings.skills.enabled and turn.recording is None:
            now = self.now(request.timezone)
            turn.user_text = skills.chosen_reading(turn.user_text, readings, now)
        run.stamp("stt")  # typed text: zero, nothing to transcribe

    def _reply(self, write: Writer, run: _Run) -> Iterator[Event]:
        """The reply's text and speech events, speech starting while the model still writes
        (no speech when `run.speed` is None: the reply is only written)."""
        stop = threading.Event()  # ends the language model's worker, whatever ends the turn
        try:
            for kind, text in self._generate(write, stop, run):
                if run.cancel.is_set():
                    break
                if kind == "token":
                    run.stamp("llm_first_token")
                    run.turn.reply += text
                    yield ReplyText(text)
                    continue
                yield from self._say(text, run)
        finally:
            stop.set()

    def _say(self, text: str, run: _Run) -> Iterator[Event]:
        """Speak one piece of the reply, chunk by chunk, until it is said or the turn stopped."""
        turn = run.turn
        if run.speed is None:  # written only
            turn.spoken.append(text)
            return
        speech = synthesize(text, turn.voice, cache_dir=self.settings.cache_dir, speed=run.speed)
        opening = not turn.spoken  # this piece opens the reply: its lead-in silence is a wait
        while not run.cancel.is_set():
            # The model waits while a chunk is synthesized: both compete for the same cores,
            # and the next sound is due before the next words are.
            with run.synthesizing:
                chunk = next(speech, None)
            if chunk is None:
                turn.spoken.append(text)
                return
            if opening:
                chunk = audio_files.trim_lead_in(chunk, self.settings.tts.lead_in_ms)
                opening = False
            if not run.released():
                return
            run.stamp("first_audio")
            run.heard_first()
            yield Speech(chunk, text)

    def _apologize(self, run: _Run) -> Iterator[Event]:
        """Say, and write, that the reply could not be finished."""
        delta = f" {LLM_APOLOGY}" if run.turn.reply else LLM_APOLOGY
        run.turn.reply += delta
        yield ReplyText(delta)
        yield from self._say(LLM_APOLOGY, run)

    def hear(self, audio: np.ndarray, request: TurnRequest) -> Transcript:
        """The final transcript of what a person said in the conversation of `request`
        (whose last exchange primes a Whisper engine); NoSpeech if nothing was said."""
        return self.transcribe(audio, prompt=self._conversation_prompt(request))

    def _conversation_prompt(self, request: TurnRequest) -> str | None:
        """The conversation's last exchange, for Whisper to expect its words (when enabled)."""
        if not self.settings.stt.conversation_prompt:
            return None
        history = request.history
        if self.memory is not None and request.session is not None:
            history = self.memory.recall(request.session).history
        recent = [message["content"] for message in history[-PROMPT_MESSAGES:]]
        return " ".join(recent) or None

    def prime_turn(self, request: TurnRequest, user_text: str) -> None:
        """Evaluate the prompt a turn of `request` saying `user_text` would start with (the
        words heard so far while the person still speaks), so that turn answers sooner."""
        if self.chat_model.keeps_prefix:
            self.wait_for_upkeep()
            self.prime(self._messages(request, Turn(user_text=user_text)))

    def _messages(self, request: TurnRequest, turn: Turn) -> list[Message]:
        history, notes = request.history, request.notes
        if self.memory is not None and request.session is not None:
            recall = self.memory.recall(request.session)
            history, notes = recall.history, [*recall.notes, *notes]
            if recall.recording is not None and turn.recording is None:  # asked about, maybe
                recording = longform.LongRecording.from_json(recall.recording)
                notes += longform.follow_up_notes(turn.user_text, recording, self.settings.longform)
        if note := language_note(turn.language):
            notes = [*notes, note]
        return build_messages(
            request.system_prompt or self.settings.system_prompt, history, turn.user_text, notes
        )

    def now(self, timezone: str | None = None) -> datetime:
        """The time now in the person's time zone (`timezone`, settings, or the machine's)."""
        return skills.now(timezone or self.settings.skills.timezone)

    def _skill_answer(self, run: _Run, messages: list[Message]) -> str:
        """A skill's answer to the person's words ('' when the model should answer)."""
        request, turn = run.request, run.turn
        if not self.settings.skills.enabled or turn.recording is not None:
            return ""
        persona = request.system_prompt or self.settings.system_prompt
        told = [
            messages[0]["content"].removeprefix(persona),
            *(m["content"] for m in messages[1:-1]),
        ]
        context = skills.SkillContext(
            self.now(request.timezone), request.session, self.memory,
            told=skills.normalize(" ".join(told)), persona=persona != DEFAULT_SYSTEM_PROMPT,
        )  # fmt: skip
        answered = skills.answer(turn.user_text, context)
        if answered is None:
            return ""
        turn.skill = answered.skill
        return answered.text

    def _would_act(self, request: TurnRequest, user_text: str) -> bool:
        """Whether a prepared turn (`request.release`) would change what is stored if it went
        on now: its words set or cancel a timer, or its session has timers to ring."""
        if request.release is None or request.release.is_set():
            return False
        if self.settings.skills.enabled:
            found = skills.answer(user_text, skills.SkillContext(self.now(request.timezone)))
            if found is not None and found.skill in skills.ACTING:
                return True
        if self.memory is None or request.session is None:
            return False
        return bool(self.memory.due_timers(time.time(), request.session))

    def _missed_alerts(self, request: TurnRequest) -> str:
        """Timers of the session that went off while nobody was there to hear them."""
        if self.memory is None or request.session is None:
            return ""
        due = self.memory.due_timers(time.time(), request.session)
        said = [skills.timers.alert_text(t) for t in due if self.memory.ring(t.id)]
        return " ".join(said)

    def _writer(self, messages: list[Message], turn: Turn, skill_answer: str = "") -> Writer:
        """What writes the reply: a skill, the model, or a clarifying question."""
        if skill_answer:
            return lambda _stop: iter([skill_answer])
        if turn.recording is not None:
            summary = turn.recording.summary  # written by longform.process
            return lambda _stop: iter([summary])
        if turn.kind is Utterance.UNCLEAR:
            question = clarifying_question(turn.user_text)
            return lambda _stop: iter([question])
        model = self.chat_model  # loaded here, so a load error surfaces in the turn's thread
        max_tokens = (
            self.settings.llm.detail_max_tokens
            if turn.kind is Utterance.DETAIL
            else self.settings.llm.max_tokens
        )
        return lambda stop: self._model_wrote(
            model.stream(messages, max_tokens=max_tokens, cancel=stop)
        )

    def _model_wrote(self, pieces: Iterator[str]) -> Iterator[str]:
        """The model's reply pieces, until it repeats a sentence; one arriving shows the model
        works (again)."""
        try:
            for piece in until_repeated(pieces):
                self.llm_problem = None
                yield piece
        finally:
            # Ended by a repeat, the model's stream is left mid-reply: close it now, so that it
            # stops and lets go of the model (a local one takes one reply at a time).
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    def _remember(self, run: _Run) -> None:
        """Store the turn in the session's memory; then summarize and prime, in the background.

        A stopped turn is stored with what was heard of the reply; one stopped before any
        sound keeps the person's words with an empty reply.
        """
        request, turn = run.request, run.turn
        if self.memory is None or request.session is None:
            return
        memory, session = self.memory, request.session
        recording = turn.recording.to_json() if turn.recording else None
        turn.stored_id = memory.add_turn(session, replace(turn, reply=turn.heard_reply), recording)

        def upkeep() -> None:
            try:
                memory.compact(session, self.summarize)
                if self.prime_after_turn and self.chat_model.keeps_prefix:
                    # The next prompt starts with the (maybe new) notes and history: evaluate
                    # it now, while the person listens, not after they have spoken.
                    follow_up = TurnRequest(session=session, system_prompt=request.system_prompt)
                    self.prime(self._messages(follow_up, Turn()))
            except Exception:  # the turn is stored; a summary can be made after the next one
                log.exception("summarizing the conversation failed")

        self._upkeep = threading.Thread(target=upkeep, name="voxloop-memory", daemon=True)
        self._upkeep.start()

    def wait_for_upkeep(self) -> None:
        """Let the previous turn's summary finish, so this turn's prompt includes it."""
        if self._upkeep is not None:
            self._upkeep.join()

    def _generate(
        self, write: Writer, stop: threading.Event, run: _Run
    ) -> Iterator[tuple[str, str]]:
        """("token", text) as the model writes, ("speak", chunk) as chunks complete.

        The worker watches `run.cancel` too: a consumer that is abandoned without being closed
        (a cancelled UI task) must not leave the model generating.
        """
        items: queue.Queue[tuple[str, str] | BaseException | None] = queue.Queue()

        def work() -> None:
            chunker = SpeechChunker(first_max_words=self.settings.tts.first_chunk_words)
            try:
                for token in write(stop):
                    if run.cancel.is_set():
                        break
                    items.put(("token", token))
                    with run.synthesizing:  # wait while speech is being synthesized
                        pass
                    for piece in chunker.push(token):
                        items.put(("speak", piece))
                for piece in chunker.flush():
                    items.put(("speak", piece))
            except Exception as err:  # handed to the consumer, which raises it in its thread
                items.put(err)
            finally:
                items.put(None)

        worker = threading.Thread(target=work, name="voxloop-llm", daemon=True)
        worker.start()
        try:
            while (item := items.get()) is not None:
                if isinstance(item, BaseException):
                    raise item if isinstance(item, VoxloopError) else _unexpected(item)
                yield item
        finally:
            stop.set()
            # A remote model may sit in a read until its timeout; the daemon worker ends then.
            worker.join(timeout=WORKER_JOIN_SECONDS)


def voice_in(voice_id: str, language: str) -> str:
    """`voice_id` if it speaks `language`, else a voice that does (of the same gender)."""
    voice = find_voice(voice_id)
    if voice.language.split("-")[0] == language:
        return voice_id
    other = voice_for_language(language, voice.gender)
    return other.id if other else voice_id


def _after(first: str, write: Writer) -> Writer:
    """A writer that says `first`, then what `write` writes."""

    def joined(stop: threading.Event) -> Iterator[str]:
        yield first + " "
        yield from write(stop)

    return joined


def _recording_title(path: str | Path, recording: longform.LongRecording) -> str:
    """What stands for the person's words in the chat when they handed in a recording."""
    minutes = recording.transcript.duration / SECONDS_PER_MINUTE
    return f"(A recording: {Path(path).name}, {minutes:.0f} min)"


def _unexpected(err: BaseException) -> VoxloopError:
    error = VoxloopError(f"The language model failed: {err}")
    error.__cause__ = err
    return error
