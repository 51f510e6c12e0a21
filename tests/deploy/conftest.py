"""Fixtures of the deployment suite (tests/deploy): podman with this machine's settings and a
minimal Debian 12 base image (podman_env.py)."""

from __future__ import annotations

import sys

import pytest

import podman_env

# The integration suite's peers.py (simulator, process handling, free ports) and helpers.py.
sys.path.insert(0, str(podman_env.REPO / "tests" / "integration"))


@pytest.fixture(scope="session")
def base_image() -> str:
    """The minimal Debian 12 root as a podman image, also tagged debian:bookworm-slim."""
    return podman_env.bootstrap_base_image()
