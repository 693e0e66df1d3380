"""`voxloop serve`: the Gradio page and its audio WebSocket on one FastAPI app under uvicorn."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from voxloop.audio import ffmpeg_exe
from voxloop.config import Settings
from voxloop.live import LiveSessions

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("voxloop.server")


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


async def playback_socket(socket: WebSocket, client: str) -> None:
    """The page's reply-audio channel (see static/voxloop.js)."""
    live: LiveSessions = socket.app.state.live
    await socket.accept()
    await live.attach(client, socket)
    try:
        while True:  # the page sends nothing yet; reading notices when it goes away
            await socket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        live.detach(client, socket)


def create_app(settings: Settings) -> FastAPI:
    """The whole web app: Gradio page at /, the reply-audio WebSocket at /ws/playback."""
    offline_environment(settings.cache_dir)
    import gradio as gr

    from voxloop.app import CSS, THEME, VoiceChat
    from voxloop.pipeline import Pipeline

    app = FastAPI(title="voxloop")
    live = LiveSessions()
    pipeline = Pipeline(settings)
    app.state.live = live
    app.add_api_websocket_route("/ws/playback", playback_socket)
    page = VoiceChat(settings, pipeline, live).build()
    head = f"<script>{(STATIC / 'voxloop.js').read_text()}</script>"
    app = gr.mount_gradio_app(
        app, page, path="/", head=head, theme=THEME, css=CSS, footer_links=[],
        max_file_size=int(settings.audio.max_megabytes * 1_000_000), show_error=False,
    )  # fmt: skip
    app.state.pipeline = pipeline
    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Load the models, then serve until interrupted."""
    import uvicorn

    host = host or settings.server.host
    port = port or settings.server.port
    app = create_app(settings)
    print("Loading models…", flush=True)
    app.state.pipeline.warm_up()
    print(f"voxloop is ready: http://{host}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
