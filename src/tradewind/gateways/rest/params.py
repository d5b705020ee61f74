"""Query parameters an endpoint does not take are refused, not ignored.

Invariant: a request to an API route whose query string names a parameter that route
(or any of its dependencies) does not declare is answered ``400 unknown_parameter``,
with the message listing what the route takes, before the handler runs, so nothing
changes. A silently ignored parameter hides a client bug: ``?limit=5`` on the book
(which takes ``depth``) would return 100 levels, and ``?symbl=BTC-USDT`` on a history
list would return every symbol.

The check is an app-wide dependency (:func:`refuse_unknown_query`): it reads the matched
route from the scope, so routes added by any installer, in any router, are covered.
Requests without a query string (the order fast lane's never reach it) pay one test.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection

from tradewind.gateways.rest.errors import ApiError

_accepted_by_route: dict[int, tuple[frozenset[str], str]] = {}


def _accepted(route: APIRoute) -> tuple[frozenset[str], str]:
    """The query names of the route and of every dependency it has, at any depth."""
    known = _accepted_by_route.get(id(route))
    if known is None:
        names: set[str] = set()
        todo: list[Dependant] = [route.dependant]
        while todo:
            d = todo.pop()
            names.update(p.alias for p in d.query_params)
            todo.extend(d.dependencies)
        takes = ", ".join(sorted(names)) if names else "no query parameters"
        where = f"{'/'.join(sorted(route.methods or ()))} {route.path_format}"
        known = _accepted_by_route[id(route)] = (frozenset(names), f"{where} takes {takes}")
    return known


async def refuse_unknown_query(conn: HTTPConnection) -> None:
    """App-wide dependency: raise ``400 unknown_parameter`` for an undeclared name."""
    scope = conn.scope
    query = scope.get("query_string")
    if not query or scope["type"] != "http":
        return
    route = scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted, takes = _accepted(route)
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name not in accepted:
            raise ApiError(400, "unknown_parameter", f"unknown query parameter {name!r}; {takes}")
