"""In-process llama.cpp backend (llama-cpp-python) on a GGUF file."""

from __future__ import annotations

import ctypes
import math
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from voxloop import assets, scheduling
from voxloop.config import LLMSettings
from voxloop.errors import ModelUnavailable
from voxloop.llm import Message, Sampling, Usage, backends

# llama-cpp-python's chat call's sampling defaults, kept when a paused reply goes on
CHAT_TOP_P = 0.95
CHAT_TOP_K = 40
CHAT_MIN_P = 0.05
# How long a reply's written words last when spoken, to know when it needs more: the voices
# say about 15 characters a second; counted as 18, so that a faster one does not run dry.
SPOKEN_CHARS_PER_SECOND = 18
# A paused reply needs the model this long before its listener has heard all its written words:
# what it writes next must still be synthesized, on cores other turns share.
AHEAD_SECONDS = 2.0
SEQUENCE = 0  # llama-cpp-python evaluates every prompt as sequence 0 of its context


@dataclass
class _Kept:
    """A paused reply's part of the context (its KV cache), kept so that it goes on without
    evaluating anything again."""

    tokens: Any  # the tokens the context held (numpy array)
    state: Any  # llama.cpp's sequence state (a ctypes byte array)
    size: int


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
    kept: _Kept | None = None  # its context while another reply used it
    done: bool = False
    finish_reason: Literal["stop", "length"] = "stop"

    @property
    def due(self) -> float:
        """When the reply needs the context (time.perf_counter()): at once until its first
        words are written, then AHEAD_SECONDS before its listener will have heard them."""
        if self.bulk:
            return math.inf
        if self.first_piece_at is None:
            return self.asked_at
        # All it has written counts, though the chunker holds a sentence's last words until it
        # ends (counting whole sentences only measured worse: docs/benchmarks.md).
        spoken_seconds = len(self.text) / SPOKEN_CHARS_PER_SECOND
        return self.first_piece_at + spoken_seconds - AHEAD_SECONDS

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
        # One context writes one reply at a time; with llm.share_context, between two of its
        # tokens a reply lets one that is due sooner write, and goes on later from its kept
        # context (ModelTurns); else a reply keeps the context to its end.
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
                paused_at = yield from self._write(messages, max_tokens, sampling, written, cancel)
            if paused_at:  # given out once the context is let go: the consumer may take a while
                yield paused_at
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
    ) -> Generator[str, None, str]:
        """Write on while this reply holds the context: to its end, or until a more urgent
        reply waits (`written.done` stays False then, its context is kept, and the piece
        written last is returned, not yielded)."""
        chunks = self._chunks(messages, max_tokens, sampling, written)
        if chunks is None:  # the whole max_tokens is written
            written.finish_reason, written.done = "length", True
            return ""
        try:
            for chunk in chunks:
                if cancel is not None and cancel.is_set():
                    return ""
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
                if self.settings.share_context and self.turns.should_yield(
                    written.due, written.arrival
                ):
                    written.kept = self._keep()
                    return piece  # to go on once the one due sooner has had the context
                yield piece
            written.done = True
            return ""
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
        if written.kept is not None:  # another reply has used the context since it let go
            self._restore(written.kept)
            written.kept = None
        # Going on after a pause: the prompt and what is written so far, as tokens (llama.cpp
        # evaluates only what its context does not already hold: with the context restored,
        # the last token), with the chat call's sampling.
        return self.llama.create_completion(
            prompt=self._so_far(written.prompt_ids, written.text),
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

    def _so_far(self, prompt_ids: list[int], text: str) -> list[int]:
        """The prompt and the reply written so far as tokens: the tokens the context holds, where
        it holds this reply, and the written text they do not cover (the last token sampled,
        not yet evaluated), since the same text tokenized afresh may split differently."""
        held = self.llama.input_ids[: self.llama.n_tokens].tolist()
        if held[: len(prompt_ids)] == prompt_ids:
            covered = self.llama.detokenize(held[len(prompt_ids) :]).decode(errors="ignore")
            if text.startswith(covered):
                return held + self._token_ids(text[len(covered) :])
        return prompt_ids + self._token_ids(text)

    def _token_ids(self, text: str) -> list[int]:
        """`text` as this model's tokens (no special tokens)."""
        return self.llama.tokenize(text.encode(), add_bos=False, special=False) if text else []

    def _keep(self) -> _Kept:
        """The context's state now, to go on from later."""
        import llama_cpp

        ctx = self.llama.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, SEQUENCE)
        state = (ctypes.c_uint8 * size)()
        size = llama_cpp.llama_state_seq_get_data(ctx, state, size, SEQUENCE)
        return _Kept(self.llama.input_ids[: self.llama.n_tokens].copy(), state, size)

    def _restore(self, kept: _Kept) -> None:
        """Put a kept state back into the context, in place of whatever it holds."""
        import llama_cpp

        self.llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        if llama_cpp.llama_state_seq_set_data(self.llama.ctx, kept.state, kept.size, SEQUENCE):
            self.llama.input_ids[: len(kept.tokens)] = kept.tokens
            self.llama.n_tokens = len(kept.tokens)
        else:  # not restored: the prompt is evaluated again, as after a reset
            self.llama.n_tokens = 0
        self.llama._requires_eval = True  # the logits are not restored: decode before sampling

    def _tokens(self, text: str) -> int:
        """How many tokens `text` is to this model (a reply's length, as the model counts)."""
        return len(self.llama.tokenize(text.encode(), add_bos=False, special=True)) if text else 0


def evaluate_new(llama: Any, tokens: list[int]) -> None:
    """Evaluate `tokens` in `llama`, keeping what it has already evaluated of their start: only
    the tokens after it are evaluated, and at least the last one, for its logits."""
    kept = llama.longest_token_prefix(llama._input_ids.tolist(), tokens)
    llama.n_tokens = min(kept, len(tokens) - 1)
    llama.eval(tokens[llama.n_tokens :])


@backends.register("llamacpp")
def _build(settings: LLMSettings, cache_dir: Path) -> LlamaCppChat:
    return LlamaCppChat(settings, cache_dir)
