"""Fixtures of the deployment suite (tests/deploy): podman with this machine's settings and a
minimal Debian 12 base image (podman_env.py)."""

from __future__ import annotations

import pytest

import podman_env


@pytest.fixture(scope="session")
def base_image() -> str:
    """The minimal Debian 12 root as a podman image, also tagged debian:bookworm-slim."""
    return podman_env.bootstrap_base_image()
