"""Scale beyond one process, on loopback: the language model on its own OpenAI-compatible
server (llama.cpp's), two `voxloop serve` replicas sharing it, and sharing one conversation
store, so a person's next turn may land on either replica."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from servers import LlamaServer, llama_server, running_server, turn_events
from voxloop import assets
from voxloop.config import Settings


@pytest.fixture(scope="module")
def shared_llm(settings: Settings) -> Iterator[LlamaServer]:
    """One llama.cpp server for every replica."""
    with llama_server(assets.gguf_path("qwen2.5-0.5b", settings.cache_dir)) as server:
        yield server


@pytest.fixture(scope="module")
def replicas(
    shared_llm: LlamaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Two voxloop replicas using the shared model server and one data folder."""
    data_dir = tmp_path_factory.mktemp("replicas")
    env = {
        "VOXLOOP_LLM__BACKEND": "openai",
        "VOXLOOP_LLM__BASE_URL": shared_llm.base_url,
        "VOXLOOP_LLM__MODEL": shared_llm.alias,
    }
    with running_server(data_dir, **env) as first, running_server(data_dir, **env) as second:
        yield [first.rstrip("/"), second.rstrip("/")]


def test_every_replica_answers_through_the_shared_model(replicas: list[str]) -> None:
    for url in replicas:
        llm = httpx.get(f"{url}/health").json()["llm"]
        assert (llm["backend"], llm["model"], llm["problem"]) == ("openai", "qwen", None)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="-", max_retries=0)
        reply = client.chat.completions.create(
            model="voxloop",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
        )
        assert "paris" in (reply.choices[0].message.content or "").lower()


def _reply(url: str, session: str, text: str = "", spoken: Path | None = None) -> str:
    """The reply to one turn (text, or a spoken question) of `session`, sent to `url`."""
    form: dict[str, Any] = {"session": session}
    if spoken:
        form["file"] = ("q.wav", spoken.read_bytes(), "audio/wav")
    else:
        form["text"] = text
    events = turn_events(url, **form)
    assert events[-1]["type"] == "done", events[-1]
    return str(events[-1]["reply"])


def test_a_conversation_continues_on_another_replica(replicas: list[str], spoken) -> None:  # type: ignore[no-untyped-def]
    first, second = replicas
    _reply(first, "traveller", "My name is Anneliese and I live in Ghent.")
    question = spoken("What is my name?")
    assert "anneliese" in _reply(second, "traveller", spoken=question).lower()
