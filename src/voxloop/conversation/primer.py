"""Evaluating a turn's prompt while the person still speaks.

The prompt of the turn their words will start (system prompt, history, notes and the words
heard so far) is evaluated by the language model as the live transcript grows; llama.cpp
reuses the longest prefix it has already evaluated, so when the turn starts only its last
words are new.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("voxloop.primer")
PRIME_MIN_WORDS = 2  # fewer words heard so far are not worth evaluating ahead


class Primer:
    """Evaluates the turn's prompt with the latest words heard, in a thread of its own: the
    transcription never waits for the model (it may be loading, or summarizing)."""

    def __init__(self, prime: Callable[[str], None]) -> None:
        self.prime = prime
        self._latest = ""
        self._primed = ""
        self._ended = False
        self._wake = threading.Condition()
        threading.Thread(target=self._work, name="voxloop-prime", daemon=True).start()

    def offer(self, text: str) -> None:
        """The words heard so far; primed when the model is free, unless newer words come."""
        with self._wake:
            self._latest = text
            self._wake.notify()

    def end(self) -> None:
        """No more priming: what was offered and not started yet is dropped."""
        with self._wake:
            self._ended = True
            self._wake.notify()

    def _next(self) -> str | None:
        with self._wake:
            while not self._ended and not self._worth(self._latest):
                self._wake.wait()
            if self._ended:
                return None
            self._primed = self._latest
            return self._primed

    def _worth(self, text: str) -> bool:
        return text != self._primed and len(text.split()) >= PRIME_MIN_WORDS

    def _work(self) -> None:
        while (text := self._next()) is not None:
            try:
                self.prime(text)
            except Exception:  # the turn evaluates its whole prompt itself
                log.exception("evaluating the prompt ahead failed")
                return
