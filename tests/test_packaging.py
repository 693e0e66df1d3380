"""The wheel is a complete voxloop: built from the source tree, installed into a fresh virtual
environment, its `voxloop serve` serves the page with its script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from voxloop_bench import free_port

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "voxloop/static/voxloop.js"
TYPED = "voxloop/py.typed"
BUILD_SECONDS = 300
START_SECONDS = 300  # loads the models: slow on a busy machine
STOP_SECONDS = 30


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """voxloop's wheel, built offline from a copy of the source tree (no stale build/)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", str(source), "-w", str(work / "dist")],
        capture_output=True, text=True, timeout=BUILD_SECONDS, cwd=work,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = (work / "dist").glob("voxloop-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the wheel; its dependencies are borrowed from the
    development environment (found after its own site-packages) rather than installed again."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--disable-pip-version-check", "-q", str(wheel)],
        check=True, timeout=BUILD_SECONDS,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # A plain path line: the development environment's own .pth files (the editable install
    # of src/) are not read, so only the wheel's voxloop can be found.
    (Path(site) / "zz_dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def test_the_wheel_holds_the_page_script_and_py_typed(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {SCRIPT, TYPED} <= names
        assert archive.read(SCRIPT) == (ROOT / "src" / SCRIPT).read_bytes()


def test_the_fresh_environment_imports_the_wheel_not_the_source_tree(
    installed: Path, tmp_path: Path
) -> None:
    found = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import voxloop; print(voxloop.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=_clean_environment(),
    ).stdout.strip()  # fmt: skip
    assert Path(found).is_relative_to(installed), found


def test_the_wheel_holds_no_benchmarks_and_bench_says_what_it_needs(
    wheel: Path, installed: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        assert not [name for name in archive.namelist() if "bench" in name]
    ran = subprocess.run(
        [str(installed / "bin" / "voxloop"), "bench", "engines"],
        capture_output=True, text=True, cwd=tmp_path, env=_clean_environment(), timeout=120,
    )  # fmt: skip
    assert ran.returncode == 2
    assert "source checkout" in ran.stderr and "Traceback" not in ran.stderr, ran.stderr


@contextmanager
def _serving(venv: Path, data_dir: Path) -> Iterator[str]:
    """`voxloop serve` of `venv` on a free loopback port, run from outside the source tree."""
    port = free_port()
    log_path = data_dir / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "voxloop"), "serve", "--port", str(port)],
            cwd=data_dir, env=_clean_environment(VOXLOOP_DATA_DIR=str(data_dir)),
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_SECONDS
        while "voxloop is ready" not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"voxloop serve did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_voxloop_serve_from_the_wheel_serves_the_page_and_its_script(
    installed: Path, tmp_path: Path
) -> None:
    script = (ROOT / "src" / SCRIPT).read_text()
    with _serving(installed, tmp_path) as url:
        page = httpx.get(f"{url}/", timeout=60)
        config = httpx.get(f"{url}/config", timeout=60)
    assert page.status_code == 200
    assert config.status_code == 200
    # The page's <head> carries the script, as Gradio hands it to the browser.
    assert script.strip() in config.json()["head"]
