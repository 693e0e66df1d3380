"""Prepared answers: begun during a pause in the person's speech, spoken only if the turn
really ended (released), dropped unheard if they go on speaking (cancelled)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from voxloop.conversation.playback import Reply
from voxloop.turns import Release

RELEASE_POLL_SECONDS = 0.01


@dataclass
class Answer:
    """An answer being prepared: spoken only once `release` is set."""

    reply: Reply
    cancel: threading.Event
    release: Release
    thread: threading.Thread | None = None

    def wait_for_release(self) -> bool:
        """Block until released (True) or cancelled (False)."""
        while not self.release.wait(RELEASE_POLL_SECONDS):
            if self.cancel.is_set():
                return False
        return not self.cancel.is_set()
