"""Protection: a password to listen beyond loopback, API keys, the page login, rate limits,
upload limits and the bounded queue ("busy, try again")."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import websockets.sync.client

from servers import serve_in_thread
from voxloop.config import load_settings
from voxloop.errors import ConfigError
from voxloop.guard import Admission, ApiError, RateLimiter, check_bind, is_loopback

KEY = "correct-horse-battery"
AUTH = {"Authorization": f"Bearer {KEY}"}


# ---- logic ---------------------------------------------------------------------------------


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.20", "::", "example.org"]))


def test_binding_beyond_loopback_needs_a_key() -> None:
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", KEY)
    with pytest.raises(ConfigError, match=r"server\.api_key"):
        check_bind("0.0.0.0", None)


def test_serve_refuses_an_open_network_address_without_a_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voxloop.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "without a password" in result.stderr and "Traceback" not in result.stderr


def test_rate_limit_refills_evenly() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("10.0.0.1")
    with pytest.raises(ApiError) as refused:
        limiter.check("10.0.0.1")
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "20"}
    limiter.check("10.0.0.2")  # another address has its own allowance
    now[0] = 20.0
    limiter.check("10.0.0.1")


def test_admission_queues_then_answers_busy() -> None:
    async def scenario() -> list[str]:
        admission = Admission(workers=1, max_waiting=1)
        log = []
        first = await admission.enter()

        async def second() -> None:
            async with await admission.enter():
                log.append("second worked")

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.01)
        assert admission.waiting == 1
        with pytest.raises(ApiError, match="busy") as refused:
            await admission.enter()
        log.append(f"third refused {refused.value.status_code}")
        first.release()
        first.release()  # a second release changes nothing
        await waiting
        assert admission.working == admission.waiting == 0
        return log

    assert asyncio.run(scenario()) == ["third refused 503", "second worked"]


# ---- a protected server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """voxloop with an API key, one worker, no waiting room and a 1 MB upload limit."""
    from voxloop.server import create_app

    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("guarded"),
        server={"api_key": KEY, "workers": 1, "max_waiting": 0},
        audio={"max_megabytes": 1},
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_api_needs_the_key(protected: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = httpx.get(f"{protected}/v1/models", headers=headers)
        assert response.status_code == 401
        assert "Authorization: Bearer" in response.json()["error"]["message"]
    assert httpx.get(f"{protected}/metrics").status_code == 401
    assert httpx.get(f"{protected}/health").status_code == 200  # for load balancers
    client = openai.OpenAI(base_url=f"{protected}/v1", api_key=KEY, max_retries=0)
    assert "voxloop" in [m.id for m in client.models.list()]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{protected}/v1", api_key="wrong").models.list()


def test_page_and_its_audio_socket_need_a_login(protected: str) -> None:
    assert httpx.get(f"{protected}/gradio_api/login_check").status_code == 401
    ws_url = protected.replace("http", "ws") + "/ws/live?client=test"
    with pytest.raises(websockets.exceptions.InvalidStatus):
        websockets.sync.client.connect(ws_url).close()
    with httpx.Client(base_url=protected) as browser:
        wrong = browser.post("/login", data={"username": "voxloop", "password": "guess"})
        assert wrong.status_code == 400
        assert browser.post("/login", data={"username": "voxloop", "password": KEY}).is_success
        assert browser.get("/gradio_api/login_check").status_code == 200
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    before = _active_sessions(protected)  # the refused socket was never counted
    with websockets.sync.client.connect(ws_url, additional_headers={"Cookie": cookie}) as socket:
        socket.send('{"type": "handsfree", "on": false}')
        # The logged-in page's socket was taken in: it is a live page the server counts.
        _wait_for(lambda: _active_sessions(protected) == before + 1)
    _wait_for(lambda: _active_sessions(protected) == before)


def _active_sessions(url: str) -> float:
    """The server's `voxloop_active_sessions` gauge (open page sockets, API work)."""
    for line in httpx.get(f"{url}/metrics", headers=AUTH).text.splitlines():
        if line.startswith("voxloop_active_sessions "):
            return float(line.split()[1])
    raise AssertionError("no voxloop_active_sessions in /metrics")


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_upload_over_the_limit_without_a_length_is_refused(protected: str) -> None:
    def body() -> Iterator[bytes]:  # chunked: the size is learned only while reading
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 65536
        yield b"\r\n--x--\r\n"

    response = httpx.post(
        f"{protected}/v1/audio/transcriptions",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=x"},
        content=body(),
    )
    assert response.status_code == 413
    assert "1 MB" in response.json()["error"]["message"]


def test_full_queue_answers_busy_then_recovers(protected: str) -> None:
    client = openai.OpenAI(base_url=f"{protected}/v1", api_key=KEY, max_retries=0)
    count = [{"role": "user", "content": "Count from one to fifty in words."}]
    started = threading.Event()
    with client.chat.completions.create(
        model="voxloop",
        messages=count,
        stream=True,
        max_tokens=300,  # type: ignore[arg-type]
    ) as stream:
        for _chunk in stream:  # the one worker is now busy with this reply
            started.set()
            response = httpx.post(
                f"{protected}/v1/audio/speech", headers=AUTH, json={"input": "Hi."}
            )
            break
    assert started.is_set()
    assert response.status_code == 503
    assert "busy" in response.json()["error"]["message"] and response.headers["Retry-After"]
    for _attempt in range(50):  # the server frees the worker once it sees the client leave
        again = httpx.post(f"{protected}/v1/audio/speech", headers=AUTH, json={"input": "Hi."})
        if again.status_code != 503:
            break
        time.sleep(0.2)
    assert again.status_code == 200 and len(again.content) > 1000


@pytest.fixture(scope="module")
def rate_limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """voxloop that allows three API requests a minute per address."""
    from voxloop.server import create_app

    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("limited"), server={"rate_per_minute": 3}
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


def test_rate_limit_answers_429(rate_limited: str) -> None:
    statuses = [httpx.get(f"{rate_limited}/v1/models").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = httpx.get(f"{rate_limited}/v1/models")
    assert "at most 3 a minute" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) > 0
    assert httpx.get(f"{rate_limited}/health").status_code == 200  # not rate limited
