"""Language models: the ChatModel protocol and the registry of backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Literal, Protocol, TypedDict

from voxloop.config import Settings
from voxloop.registry import Registry


class Message(TypedDict):
    """One chat message, as in the OpenAI chat API."""

    role: Literal["system", "user", "assistant"]
    content: str


class ChatModel(Protocol):
    """A chat model that streams its reply as text pieces."""

    def stream(
        self, messages: list[Message], *, max_tokens: int, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        """Yield the reply piece by piece; stop early once `cancel` is set."""
        ...


backends: Registry[ChatModel] = Registry("language model backend")


def get_chat_model(settings: Settings) -> ChatModel:
    """The shared chat model of `settings.llm.backend`, loaded on first use."""
    return backends.get(settings.llm.backend, settings.llm, settings.cache_dir)


def chat_model_loaded(settings: Settings) -> bool:
    """Whether the chat model of `settings` has been loaded in this process."""
    return backends.built(settings.llm.backend, settings.llm, settings.cache_dir)


from voxloop.llm import llamacpp, openai_compat  # noqa: E402,F401  (registers the backends)
