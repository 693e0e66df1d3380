"""Any OpenAI-compatible chat server: Ollama, vLLM, llama.cpp's server, hosted providers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from voxloop.config import LLMSettings
from voxloop.errors import BackendDown
from voxloop.llm import Message, Sampling, Usage, backends

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam


class OpenAICompatChat:
    """Streams chat completions from `settings.base_url` with the official openai client."""

    keeps_prefix = False  # a request ahead would only load the server, and may cut others off

    def __init__(self, settings: LLMSettings) -> None:
        import openai

        self.settings = settings
        self.client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=settings.timeout_seconds,
            max_retries=0,  # a voice turn cannot wait for retries; the caller apologizes instead
        )

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        cancel: threading.Event | None = None,
        sampling: Sampling | None = None,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        """Yield reply pieces as the server streams them."""
        import httpx
        import openai

        sampling = sampling or Sampling()
        options: dict[str, Any] = {"stop": list(sampling.stop)} if sampling.stop else {}
        if sampling.top_p is not None:  # else the server's own default
            options["top_p"] = sampling.top_p
        if usage is not None:  # servers that cannot report usage ignore the option
            options["stream_options"] = {"include_usage": True}
        temperature = sampling.temperature
        if temperature is None:
            temperature = self.settings.temperature
        try:
            response = self.client.chat.completions.create(
                model=self.settings.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                **options,
            )
            with response:
                for chunk in response:
                    if cancel is not None and cancel.is_set():
                        break
                    if usage is not None:
                        _note_usage(chunk, usage)
                    if chunk.choices and (piece := chunk.choices[0].delta.content):
                        yield piece
        except (openai.APITimeoutError, httpx.TimeoutException) as err:
            raise BackendDown(
                f"The language model server at {self.settings.base_url} did not answer within "
                f"{self.settings.timeout_seconds:g} s."
            ) from err
        except openai.APIConnectionError as err:
            raise BackendDown(
                f"Cannot reach the language model server at {self.settings.base_url}."
            ) from err
        except openai.APIStatusError as err:
            raise BackendDown(
                f"The language model server answered {err.status_code}: {err.message}"
            ) from err
        except (openai.APIError, httpx.TransportError) as err:  # e.g. it died mid-reply
            raise BackendDown(
                f"The language model server at {self.settings.base_url} broke off its reply "
                f"({type(err).__name__})."
            ) from err


def _note_usage(chunk: ChatCompletionChunk, usage: Usage) -> None:
    """Copy what a chunk says of the reply's usage and ending into `usage`."""
    if chunk.usage is not None:
        usage.prompt_tokens = chunk.usage.prompt_tokens
        usage.completion_tokens = chunk.usage.completion_tokens
    if chunk.choices and chunk.choices[0].finish_reason == "length":
        usage.finish_reason = "length"


@backends.register("openai")
def _build(settings: LLMSettings, cache_dir: Path) -> OpenAICompatChat:
    return OpenAICompatChat(settings)
