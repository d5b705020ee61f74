"""The real-service fixtures of the integration suite (PostgreSQL, Redis, RabbitMQ), for
the end-to-end tests of distributed mode."""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401  (fixtures)
    amqp_url,
    pg_admin_url,
    pg_url,
    redis_url,
)
