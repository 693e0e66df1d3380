"""Language models: in-process llama.cpp and a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import servers
from voxloop import assets
from voxloop.config import Settings, load_settings
from voxloop.errors import BackendDown, ConfigError, ModelUnavailable
from voxloop.llm import Sampling, get_chat_model
from voxloop.llm.llamacpp import LlamaCppChat
from voxloop.prompts import build_messages
from voxloop_bench.recordings import normalize

QUESTION = "What is the capital of France?"


def _ask(settings: Settings, question: str = QUESTION, max_tokens: int = 60) -> list[str]:
    messages = build_messages(settings.system_prompt, [], question)
    return list(get_chat_model(settings).stream(messages, max_tokens=max_tokens))


def test_default_model_answers_a_fact(settings: Settings) -> None:
    pieces = _ask(settings)
    assert len(pieces) > 2, "the reply should stream in several pieces"
    assert "paris" in "".join(pieces).lower()


def test_each_reply_samples_with_its_own_seed(settings: Settings) -> None:
    model, lively = get_chat_model(settings), Sampling(temperature=1.0)  # replies vary a lot
    assert isinstance(model, LlamaCppChat)

    def story(about: str) -> str:
        model.llama.reset()  # evaluated afresh: a cached prompt's logits differ a little
        messages = build_messages(settings.system_prompt, [], f"Make up a story about {about}.")
        return "".join(model.stream(messages, max_tokens=40, sampling=lively))

    first = story("a cat")
    story("a dog")  # another conversation's turn in between (llm.seed: each reply's own)
    assert story("a cat") == first


def test_with_a_shared_context_a_new_reply_goes_first_and_the_other_goes_on_as_it_was(
    settings: Settings,
) -> None:
    shared = settings.llm.model_copy(update={"share_context": True})
    model = LlamaCppChat(shared, settings.cache_dir)
    alone, events, evaluated = _two_replies(model, settings)
    order = [who for who, _ in events]
    # The new question was answered in the middle of the long reply, not after it.
    assert "short" in order and order.index("short") < len(order) - order[::-1].index("long") - 1
    assert "paris" in "".join(p for who, p in events if who == "short").lower()
    # The long reply went on where it had paused: nothing lost, nothing said twice.
    paused = "".join(p for who, p in events[: order.index("short")] if who == "long")
    went_on = "".join(p for who, p in events if who == "long")
    assert went_on.startswith(paused) and alone.startswith(went_on[: len(paused) + 40])
    # ... from its own context, kept: after its prompt it never evaluated more than a token at
    # once, where evaluating its prompt again after the other reply's would be dozens.
    long_evaluations = [n for who, n in evaluated if who == "long"]
    assert long_evaluations[0] > 20 and max(long_evaluations[1:]) <= 2


def test_by_default_a_reply_is_written_to_its_end_before_the_next(settings: Settings) -> None:
    model = get_chat_model(settings)
    assert isinstance(model, LlamaCppChat) and not settings.llm.share_context
    alone, events, _ = _two_replies(model, settings)
    order = [who for who, _ in events]
    assert order == sorted(order) and "short" in order  # every "long" piece before any "short"
    assert "".join(p for who, p in events if who == "long") == alone


def _two_replies(
    model: LlamaCppChat, settings: Settings
) -> tuple[str, list[tuple[str, str]], list[tuple[str, int]]]:
    """A long greedy reply alone; then the same with a short question asked once its first
    sentence is written: (the reply alone, (whose, piece) as they came, (whose, tokens
    evaluated) for each evaluation llama.cpp made)."""
    greedy = Sampling(temperature=0)
    long_question = build_messages(
        settings.system_prompt, [], "Describe a day at the beach in five sentences."
    )
    alone = "".join(model.stream(long_question, max_tokens=50, sampling=greedy))
    events: list[tuple[str, str]] = []
    evaluated: list[tuple[str, int]] = []
    first_sentence = threading.Event()
    evaluate = model.llama.eval

    def counting_eval(tokens: list[int]) -> None:
        evaluated.append((threading.current_thread().name, len(tokens)))
        evaluate(tokens)

    def long_reply() -> None:
        for piece in model.stream(long_question, max_tokens=50, sampling=greedy):
            events.append(("long", piece))
            if any(mark in piece for mark in ".!?"):
                first_sentence.set()

    def short_reply() -> None:
        assert first_sentence.wait(60)
        question = build_messages(settings.system_prompt, [], QUESTION)
        for piece in model.stream(question, max_tokens=30):
            events.append(("short", piece))

    model.llama.eval = counting_eval  # type: ignore[method-assign]
    try:
        threads = [
            threading.Thread(target=long_reply, name="long"),
            threading.Thread(target=short_reply, name="short"),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        del model.llama.eval
    return alone, events, evaluated


def _count_then_cancel(settings: Settings, after: int) -> list[str]:
    """Ask for a long reply and set the cancel flag once `after` pieces have arrived."""
    cancel = threading.Event()
    messages = build_messages(settings.system_prompt, [], "Count from one to one hundred.")
    pieces = []
    for piece in get_chat_model(settings).stream(messages, max_tokens=300, cancel=cancel):
        pieces.append(piece)
        if len(pieces) == after:
            cancel.set()
    return pieces


def test_cancel_stops_generation_early(settings: Settings) -> None:
    assert len(_count_then_cancel(settings, after=3)) == 3


def test_small_model_loads_and_replies() -> None:
    # Greedy: a 135M model's sampled replies wander; its most likely reply here is the word.
    small = load_settings(llm={"model": "smollm2-135m", "temperature": 0.0})
    model = get_chat_model(small)
    # The model asked for is the one answering (GGUF metadata), not the default one.
    assert isinstance(model, LlamaCppChat) and model.llama.metadata["general.size_label"] == "135M"
    reply = "".join(_ask(small, "Reply with one word: hello.", max_tokens=20))
    assert {"hello", "hi"} & set(normalize(reply)), reply


def test_user_gguf_path_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a packaged model"):
        assets.gguf_path(str(tmp_path / "missing.gguf"), tmp_path)
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ModelUnavailable, match="not a GGUF"):
        assets.gguf_path(str(not_gguf), tmp_path)


def test_corrupted_packaged_model_is_reported_before_use(
    settings: Settings, tmp_path: Path
) -> None:
    good = assets.gguf_path("qwen2.5-0.5b", settings.cache_dir)
    cache = tmp_path / "cache"
    cache.mkdir()
    broken = cache / good.name
    shutil.copyfile(good, broken)
    with broken.open("r+b") as f:  # flip bytes in the middle of the weights
        f.seek(200_000_000)
        f.write(b"\x00" * 64)
    with pytest.raises(ModelUnavailable, match="corrupt"):
        assets.gguf_path("qwen2.5-0.5b", cache)


@pytest.fixture(scope="module")
def llama_server(settings: Settings) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server on loopback, serving the default model."""
    with servers.llama_server(assets.gguf_path("qwen2.5-0.5b", settings.cache_dir)) as server:
        yield server.base_url


def test_openai_backend_streams_from_a_real_server(llama_server: str) -> None:
    settings = load_settings(llm={"backend": "openai", "base_url": llama_server, "model": "qwen"})
    pieces = _ask(settings)
    assert len(pieces) > 2 and "paris" in "".join(pieces).lower()


def test_openai_backend_cancel(llama_server: str) -> None:
    settings = load_settings(llm={"backend": "openai", "base_url": llama_server, "model": "qwen"})
    assert len(_count_then_cancel(settings, after=2)) == 2


def test_unreachable_server_is_backend_down() -> None:
    url = f"http://127.0.0.1:{servers.free_port()}/v1"
    settings = load_settings(llm={"backend": "openai", "base_url": url, "timeout_seconds": 2})
    with pytest.raises(BackendDown, match="Cannot reach"):
        _ask(settings)
