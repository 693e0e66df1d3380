"""`voxloop serve`: the Gradio page, its audio WebSocket and the HTTP API on one FastAPI app
under uvicorn."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.routing import Mount

from voxloop import __version__, api
from voxloop.audio import BYTES_PER_MEGABYTE, ffmpeg_exe
from voxloop.config import Settings
from voxloop.conversation import Options
from voxloop.doors.realtime import realtime_socket
from voxloop.errors import ConfigError
from voxloop.guard import POLICY_VIOLATION, check_bind
from voxloop.live import LiveSessions

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("voxloop.server")
LISTEN_BACKLOG = 2048  # uvicorn's own default
PAGE_USER = "voxloop"  # the page's login name when server.api_key is set (the key is the password)


def offline_environment(cache_dir: Path) -> None:
    """No analytics, no hub calls, and an `ffmpeg` on PATH for Gradio's streamed audio."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if shutil.which("ffmpeg") is None:  # Gradio looks it up on PATH; use the wheel's binary
        folder = cache_dir / "bin"
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / "ffmpeg"
        if not link.exists():
            link.symlink_to(ffmpeg_exe())
        os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ['PATH']}"


async def live_socket(socket: WebSocket, client: str) -> None:
    """The page's live channel (static/voxloop.js): reply audio and control messages out;
    microphone frames (hands-free, or the record button's), their start and stop in."""
    from voxloop import recording_stream

    live: LiveSessions = socket.app.state.live
    if not _logged_in(socket):
        await socket.close(code=POLICY_VIOLATION, reason="Log in to the page first.")
        return
    await socket.accept()
    await live.attach(client, socket)
    session = live.get(client)
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                break
            frames = message.get("bytes")
            if frames is not None and session.handsfree is not None:
                session.handsfree.feed(frames)
            elif frames is not None:
                recording_stream.feed(live, client, frames)
            elif message.get("text"):
                _control(socket, client, json.loads(message["text"]))
    except WebSocketDisconnect:
        pass
    finally:
        live.detach(client, socket)
        recording_stream.close(live, client)
        if session.handsfree is not None:
            session.handsfree.close()
            session.handsfree = None


def _logged_in(socket: WebSocket) -> bool:
    """Whether the socket's page has logged in (always, when the page needs no password)."""
    page = socket.app.state.page
    if page.auth is None:
        return True
    cookies, suffix = socket.cookies, page.cookie_id
    token = cookies.get(f"access-token-{suffix}") or cookies.get(f"access-token-unsecure-{suffix}")
    return token in page.tokens


def _control(socket: WebSocket, client: str, message: dict[str, Any]) -> None:
    """Start or end a hands-free conversation or a recording's stream, as the page asks."""
    from voxloop import recording_stream
    from voxloop.handsfree import HandsFree

    live: LiveSessions = socket.app.state.live
    session = live.get(client)
    settings: Settings = socket.app.state.pipeline.settings
    server = settings.server
    if message.get("type") == "record":
        if not message.get("on"):  # also tells the page when nothing was streamed
            recording_stream.stop(live, client)
        elif server.stream_recordings:
            # The turn starts at stop with the page's choices, or the handler starts it.
            answer = server.answer_at_stop and server.playback == "websocket"
            options = _options(message)
            recording_stream.start(live, client, socket.app.state.pipeline, options, answer)
    if message.get("type") != "handsfree":
        return
    if session.handsfree is not None:
        session.handsfree.close()
        session.handsfree = None
    if message.get("on"):
        options = _options(message)
        session.handsfree = HandsFree(socket.app.state.pipeline, live, client, options)


def _options(message: dict[str, Any]) -> Options:
    """What the person chose in the page, as its socket message says."""
    return Options(
        voice=message.get("voice") or None,
        speed=float(message.get("speed") or 1.0),
        system_prompt=message.get("system_prompt") or None,
        wake=bool(message.get("wake")),
    )


def create_app(settings: Settings) -> FastAPI:
    """The whole web app: Gradio page at /, its live WebSocket at /ws/live, the API (api.py)."""
    offline_environment(settings.cache_dir)
    import gradio as gr

    from voxloop.alarms import Alarms, PageDoor, StreamDoor
    from voxloop.app import CSS, THEME, VoiceChat
    from voxloop.memory import Memory
    from voxloop.pipeline import Pipeline

    app = FastAPI(
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN; voxloop stays offline
        redoc_url=None,
        title="voxloop",
        version=__version__,
        description="A local speech-to-speech assistant. OpenAI-compatible speech and chat "
        "endpoints under /v1, a streamed spoken turn at /v1/voxloop/turn, the page at /.",
    )
    live = LiveSessions()
    memory = Memory(settings.memory_file, settings.memory)
    pipeline = Pipeline(settings, memory)
    app.state.live = live
    app.state.pipeline = pipeline
    app.add_api_websocket_route("/ws/live", live_socket)
    app.add_api_websocket_route("/v1/realtime", realtime_socket)
    alarms = Alarms(memory, settings.skills.alarm_poll_seconds)
    streams = StreamDoor(pipeline)
    alarms.add_door(PageDoor(live, pipeline))
    alarms.add_door(streams)
    alarms.start()  # a daemon thread: one indexed query every poll
    app.state.alarms = alarms
    api.install(app, pipeline, live.connected_count, streams)
    page = VoiceChat(settings, pipeline, live, memory).build()
    head = f"<script>{(STATIC / 'voxloop.js').read_text()}</script>"
    key = settings.server.api_key
    app = gr.mount_gradio_app(
        app, page, path="/", head=head, theme=THEME, css=CSS, footer_links=[],
        max_file_size=int(settings.upload_megabytes * BYTES_PER_MEGABYTE), show_error=False,
        auth=(PAGE_USER, key) if key else None,
    )  # fmt: skip
    app.state.page = next(r.app for r in app.routes if isinstance(r, Mount))  # Gradio's app
    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Load the models, then serve until interrupted."""
    host = host or settings.server.host
    port = port or settings.server.port
    check_bind(host, settings.server.api_key)
    listener = listening_socket(host, port)
    app = create_app(settings)
    print("Loading models…", flush=True)
    app.state.pipeline.warm_up()
    server = _AnnouncingServer(uvicorn.Config(app, log_level="warning"))
    server.ready_message = f"voxloop is ready: http://{host}:{port}/"
    server.run(sockets=[listener])


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before the models load: a port in use is said at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as err:
        listener.close()
        raise ConfigError(
            f"Cannot listen on {host}:{port} ({err.strerror}). Another program may be using "
            "that port: choose another with --port."
        ) from err
    listener.listen(LISTEN_BACKLOG)
    return listener


class _AnnouncingServer(uvicorn.Server):
    """Says "voxloop is ready" only once requests are served (the page's startup is done)."""

    ready_message = ""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.ready_message, flush=True)
