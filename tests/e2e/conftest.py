"""Fixtures of the browser tests (helpers in e2e_browser.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servers import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with default settings (replies played over the WebSocket)."""
    with running_server(tmp_path_factory.mktemp("server")) as url:
        yield url
