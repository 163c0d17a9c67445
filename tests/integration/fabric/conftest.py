"""Fixtures for the Fabric client tests: the devnet's client environment."""

from __future__ import annotations

from typing import Any

import pytest

from gxlib.devnet.network import Devnet


@pytest.fixture(scope="session")
def client_env(devnet: Devnet) -> dict[str, Any]:
    """What ``gx devnet env --json`` prints for the session devnet."""
    return devnet.environment()
