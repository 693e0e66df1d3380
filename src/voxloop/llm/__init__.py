"""Language models: the ChatModel protocol and the registry of backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

from voxloop.config import Settings
from voxloop.registry import Registry


class Message(TypedDict):
    """One chat message, as in the OpenAI chat API."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Sampling:
    """A request's own sampling choices; None keeps the configured one (or the backend's)."""

    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()


@dataclass
class Usage:
    """What one reply used and why it ended, filled in by the backend when its stream ends;
    token counts stay None where the backend cannot tell."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: Literal["stop", "length"] = "stop"


class ChatModel(Protocol):
    """A chat model that streams its reply as text pieces."""

    # Whether evaluating a prompt ahead (a one-token request) makes the next request that
    # starts with it faster: true where one context keeps the evaluated prefix (in process).
    keeps_prefix: bool

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        cancel: threading.Event | None = None,
        sampling: Sampling | None = None,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        """Yield the reply piece by piece; stop early once `cancel` is set. With `usage`, the
        token counts and the finish reason are written into it at the end."""
        ...


backends: Registry[ChatModel] = Registry("language model backend")


def get_chat_model(settings: Settings) -> ChatModel:
    """The shared chat model of `settings.llm.backend`, loaded on first use."""
    return backends.get(settings.llm.backend, settings.llm, settings.cache_dir)


def chat_model_loaded(settings: Settings) -> bool:
    """Whether the chat model of `settings` has been loaded in this process."""
    return backends.built(settings.llm.backend, settings.llm, settings.cache_dir)


from voxloop.llm import llama_server, llamacpp, openai_compat  # noqa: E402,F401  (registers the backends)
