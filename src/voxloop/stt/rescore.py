"""The likeliest of several readings of one utterance, by a small language model.

Whisper's beam reads an utterance several ways that differ in a word or two ("What do these
make?", "What do bees make?"). Whisper tiny.en knows little about which words go together; a
language model knows more. Each reading is scored by the model's log-probability of its words as
a person's message, plus Whisper's own log-probability of it, plus a bonus per token (a sum of
log-probabilities alone prefers readings that stop early: "heading" for "heading for rally
point"); the best is the transcript. Chosen on the tuning splits of `voxloop bench stt` and of
the spoken `voxloop bench answers` questions; held-out WER 11.3% -> 9.8% and 10.4% -> 6.9%
(docs/benchmarks.md, speech to text).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxloop.errors import ModelUnavailable
from voxloop.llm.llamacpp import evaluate_new
from voxloop.text import words

log = logging.getLogger(__name__)

# The reading is scored as the text of a person's chat message (ChatML, which both packaged
# model families use): the model's sense of what people say, punctuation and case included.
MESSAGE_START = "<|im_start|>user\n"
MESSAGE_END = "<|im_end|>"
CONTEXT_TOKENS = 256  # a reading of at most 30 s of speech is far shorter
# Weights of a reading's score, chosen on the tuning splits (a grid of 0-4 and 0-6).
RECOGNIZER_WEIGHT = 4.0  # on Whisper's summed log-probability of the reading
TOKEN_BONUS = 3.0  # per token of the reading, for the language model's length bias


@dataclass(frozen=True)
class Reading:
    """One reading of an utterance and the recognizer's summed log-probability of it."""

    text: str
    logprob: float


class Rescorer:
    """A language model's log-likelihood of texts, to pick the likeliest reading."""

    def __init__(self, path: Path, threads: int) -> None:
        try:
            from llama_cpp import Llama

            self.llama = Llama(
                model_path=str(path),
                n_ctx=CONTEXT_TOKENS,
                n_threads=threads,
                logits_all=True,  # every token's probability, not only the next one's
                verbose=False,
            )
        except (ImportError, ValueError, RuntimeError) as err:
            raise ModelUnavailable(
                f"Could not load {path} to choose between readings of what was said ({err}). "
                "Run `make setup` to restore the packaged models, set stt.rescore_model to a "
                "valid .gguf file, or to none to keep Whisper's own reading."
            ) from err
        self._start = self.llama.tokenize(MESSAGE_START.encode(), add_bos=False, special=True)
        self._end = self.llama.tokenize(MESSAGE_END.encode(), add_bos=False, special=True)
        self._lock = threading.Lock()  # one context, shared by every conversation

    def likeliest(self, readings: Sequence[Reading]) -> str:
        """The text of the best-scored reading; the first of equals. Readings that differ only
        in case and punctuation are one (the first of them is scored), and none is scored when
        they are all alike."""
        distinct = {tuple(words(r.text)): r for r in reversed(readings)}
        if len(distinct) < 2:
            return readings[0].text if readings else ""
        scored = {id(r): self.score(r) for r in reversed(distinct.values())}
        return max(readings, key=lambda r: scored.get(id(r), -math.inf)).text

    def score(self, reading: Reading) -> float:
        """How likely `reading` is, by the language model and the recognizer together."""
        language, tokens = self.log_likelihood(reading.text)
        return language + TOKEN_BONUS * tokens + RECOGNIZER_WEIGHT * reading.logprob

    def log_likelihood(self, text: str) -> tuple[float, int]:
        """The summed log-probability of `text` as a whole message (-inf if it is too long),
        and its number of tokens."""
        llama, start = self.llama, self._start
        said = llama.tokenize(text.encode(), add_bos=False, special=False)
        tokens = start + said + self._end
        if len(tokens) > CONTEXT_TOKENS:
            return -math.inf, len(said)
        with self._lock:
            evaluate_new(llama, tokens)  # readings share their start: it is evaluated once
            logits = np.asarray(llama.scores[len(start) - 1 : len(tokens) - 1], np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_totals = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        chosen = logits[np.arange(len(logits)), tokens[len(start) :]]
        return float((chosen - log_totals).sum()), len(said)


@functools.cache
def rescorer(path: Path, threads: int) -> Rescorer:
    """The process's rescorer of the model at `path`."""
    return Rescorer(path, threads)


def load(model: str | None, cache_dir: Path, threads: int) -> Rescorer | None:
    """The rescorer of `model` (a packaged model name or a .gguf path), or None when `model`
    is None or its optional package is not installed (logged: readings stay Whisper's)."""
    if model is None:
        return None
    from voxloop import assets

    try:
        return rescorer(assets.gguf_path(model, cache_dir), threads)
    except ModelUnavailable as err:
        log.warning("Whisper's own reading is kept (no rescoring): %s", err)
        return None
