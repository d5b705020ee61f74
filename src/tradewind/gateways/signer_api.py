"""The signer's HTTP face (``tradewind signer``): two routes on loopback, each taking a
raw JSON body authenticated by its ``X-Tradewind-Signature`` HMAC. The checks are in
:class:`~tradewind.services.funding.signer.SignerService` (and, for ``/v1/sweep``,
:class:`~tradewind.services.funding.sweep_signer.SweepSigner`); this module only passes the
exact bytes received (never a re-encoded body) and shapes errors as ``{code, message}``.

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

import structlog
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from tradewind.services.funding.signer import SIGNATURE_HEADER, SignerError, SignerService
from tradewind.services.funding.sweep_signer import SweepSigner

log = structlog.get_logger(__name__)
MAX_BODY = 16_384


def create_signer_app(service: SignerService, sweeps: SweepSigner | None = None) -> FastAPI:
    app = FastAPI(title="Tradewind signer", docs_url=None, redoc_url=None, openapi_url=None)

    async def answer(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"code": "too_large", "message": "body too large"}, 413)
        try:
            reply = await service.handle(body, request.headers.get(SIGNATURE_HEADER))
        except SignerError as e:
            return JSONResponse({"code": e.code, "message": e.message}, e.status)
        except Exception:
            log.exception("signer failed")
            return JSONResponse({"code": "internal_error", "message": "signer failed"}, 500)
        return JSONResponse(reply.body)

    app.add_api_route("/v1/sign", answer, methods=["POST"])
    app.add_api_route("/v1/address", answer, methods=["POST"])

    async def sweep(request: Request) -> Response:
        body = await request.body()
        if sweeps is None:
            return JSONResponse({"code": "not_found", "message": "no sweeps here"}, 404)
        if len(body) > MAX_BODY:
            return JSONResponse({"code": "too_large", "message": "body too large"}, 413)
        try:
            reply = await sweeps.handle(body, request.headers.get(SIGNATURE_HEADER))
        except SignerError as e:
            return JSONResponse({"code": e.code, "message": e.message}, e.status)
        except Exception:
            log.exception("sweep signer failed")
            return JSONResponse({"code": "internal_error", "message": "signer failed"}, 500)
        return JSONResponse(reply.body)

    app.add_api_route("/v1/sweep", sweep, methods=["POST"])

    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    app.add_api_route("/health", health, methods=["GET"])
    return app
