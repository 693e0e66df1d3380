"""Scale beyond one process, on loopback: the language model on its own OpenAI-compatible
server (llama.cpp's), two `voxloop serve` replicas sharing it, and sharing one conversation
store (the data folder's SQLite file, or a real PostgreSQL server: every test runs with each),
so a person's next turn may land on either replica."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from servers import LlamaServer, llama_server, running_server, turn_events
from voxloop import assets
from voxloop.config import MemorySettings, Settings
from voxloop.memory import Memory


@pytest.fixture(scope="module")
def shared_llm(settings: Settings) -> Iterator[LlamaServer]:
    """One llama.cpp server for every replica."""
    with llama_server(assets.gguf_path("qwen2.5-0.5b", settings.cache_dir)) as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Memory:
    """The conversation store of the replicas: their data folder's SQLite file, or a database
    on the real PostgreSQL server (memory.url)."""
    data_dir = tmp_path_factory.mktemp("replicas")
    url = request.getfixturevalue("postgres").create_database() if request.param != "sqlite" else ""
    return Memory(data_dir / MemorySettings().file_name, MemorySettings(url=url))


@pytest.fixture(scope="module")
def replicas(shared_llm: LlamaServer, shared_store: Memory) -> Iterator[list[str]]:
    """Two voxloop replicas using the shared model server and the shared store."""
    data_dir = shared_store.path.parent
    env = {
        "VOXLOOP_LLM__BACKEND": "openai",
        "VOXLOOP_LLM__BASE_URL": shared_llm.base_url,
        "VOXLOOP_LLM__MODEL": shared_llm.alias,
        "VOXLOOP_MEMORY__URL": shared_store.settings.url,
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


def test_both_replicas_store_turns_of_one_conversation_at_once(
    replicas: list[str], shared_store: Memory
) -> None:
    """A person on two devices: turns of one session reach both replicas at the same moment,
    and both are stored in the one conversation, as the store says."""
    questions = ["What is two plus two?", "What colour is the sky?"]
    replies: list[str] = []
    threads = [
        threading.Thread(target=lambda u=url, q=q: replies.append(_reply(u, "two-devices", q)))
        for url, q in zip(replicas, questions, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == 2 and all(replies)
    stored = shared_store.exchanges("two-devices")
    assert sorted(user for user, _reply in stored) == sorted(questions)
