"""Test resources from Debian packages (`scripts/setup.sh --test` installs them): a missing
one fails the test in CI (CI=true) and skips it elsewhere, naming the package either way."""

from __future__ import annotations

import os

import pytest

CI_VALUES = ("1", "true", "yes")


def in_ci() -> bool:
    """Whether the tests run in CI, where every test resource must be installed."""
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


def require_package(package: str, present: bool) -> None:
    """Fail (in CI) or skip (elsewhere) the test unless the Debian `package`'s files are
    `present`."""
    if present:
        return
    message = (
        f"The Debian package {package} is not installed: `apt-get install -y {package}` "
        "(`make test` runs scripts/setup.sh --test, which installs it)."
    )
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)
