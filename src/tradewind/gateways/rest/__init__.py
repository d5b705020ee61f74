"""The REST gateway (DESIGN §6): ``create_app(RestContext) -> FastAPI``.

Stateless and wired by the runtime's composition root; see :mod:`.app`.
"""

from tradewind.gateways.rest.app import RestContext, create_app
from tradewind.gateways.rest.auth import Principal

__all__ = ["Principal", "RestContext", "create_app"]
