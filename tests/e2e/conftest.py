"""The real-service fixtures of the integration suite (PostgreSQL, Redis, RabbitMQ), for
the end-to-end tests of distributed mode, and the browser of the web UI's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401  (fixtures)
    amqp_url,
    pg_admin_url,
    pg_url,
    redis_url,
)
from tests.support.browser import launched_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module; each test opens its own contexts
    (``tests.support.browser.new_page``)."""
    with launched_browser() as b:
        yield b
