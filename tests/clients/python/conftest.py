"""Fixtures for the live-client suite: a running ollmlx (scripted backend) at $OLLMLX_URL."""
import os

import pytest


@pytest.fixture(scope="session")
def base_url() -> str:
    url = os.environ.get("OLLMLX_URL")
    if not url:
        pytest.fail("OLLMLX_URL is not set: start ollmlx-mock-serve first (scripts/test.sh does)")
    return url
