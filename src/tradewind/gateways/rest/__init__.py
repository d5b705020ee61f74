"""The REST gateway (DESIGN §6): ``create_app(RestContext) -> FastAPI``.

Stateless and wired by the runtime's composition root; see :mod:`.app`.
"""

from tradewind.gateways.rest.app import Principal, RestContext, create_app

__all__ = ["Principal", "RestContext", "create_app"]
