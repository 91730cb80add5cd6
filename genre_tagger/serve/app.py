"""The ASGI app: the routes (``routes.py``) with JSON errors, inside the security wrappers.

Every error is JSON ``{"error": "..."}``: bad input is a 4xx (400 bad value, 401 token,
403 a media file outside the catalog, 404 unknown album / file / route, 409 something this
server was not started with, 413 too large, 415 wrong upload type, 422 a body or parameter
of the wrong shape or an upload that does not decode), never a 500.

Wrappers, outermost first: ``SecurityHeaders``, ``HostCheck`` (without a token),
``TokenGate``, ``BodyLimit``; then FastAPI (no CORS). The API's reference: ``/api/docs``
(rendered here from ``/openapi.json``; FastAPI's own docs pages load from a CDN, so they are off).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from genre_tagger import __version__
from genre_tagger.errors import UserInputError
from genre_tagger.serve.apidocs import api_docs_html
from genre_tagger.serve.routes import album_router, media_router, model_router, search_router
from genre_tagger.serve.security import COOKIE, HostCheck, SecurityHeaders, TokenGate, query_token
from genre_tagger.serve.served import Served
from genre_tagger.serve.uploads import BodyLimit

HERE = Path(__file__).parent
log = logging.getLogger("genre_tagger.serve")

__all__ = ["Served", "create_app"]


def _validation_message(err: RequestValidationError) -> str:
    parts = []
    for item in err.errors()[:3]:
        if item.get("type") == "json_invalid":
            position = item.get("loc", ("body", "?"))[-1]
            parts.append(f"body is not valid JSON: {(item.get('ctx') or {}).get('error', 'decode error')} "
                         f"(at character {position})")
            continue
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "path", "body"))
        kind = {"query": "query parameter", "path": "path parameter", "body": "body"}.get(
            str(item.get("loc", ("",))[0]), "input")
        parts.append(f"{kind} {where!r}: {item.get('msg', 'invalid')}" if where else f"{kind}: {item.get('msg')}")
    return "; ".join(parts) or "invalid request"


def _json_errors(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    @app.exception_handler(UserInputError)
    async def input_error(request: Request, exc: UserInputError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        log.exception("error answering %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server's log"},
                            status_code=500)


def _page_router(served: Served) -> APIRouter:
    router = APIRouter()
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    @router.get("/health")
    def health():
        return {"status": "ok", "version": __version__}

    @router.get("/", include_in_schema=False)
    def page(request: Request):
        token = query_token(request.scope)
        if token is not None and served.token is not None:  # TokenGate let it in: it is the token
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            return response
        return templates.TemplateResponse(request, "index.html", {"version": __version__})

    @router.get("/api/info")
    def info():
        return served.info()

    return router


def create_app(served: Served, loopback_only: bool = False):
    """The ASGI app over ``served``; ``loopback_only``: also refuse requests whose ``Host`` is
    not a loopback name (what ``serve`` does when it runs without a token)."""
    app = FastAPI(title="genre_tagger catalog", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json")
    _json_errors(app)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs():
        return HTMLResponse(api_docs_html(app.openapi()))

    for router in (_page_router(served), album_router(served), search_router(served), model_router(served),
                   media_router(served)):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    gated = TokenGate(BodyLimit(app, served.max_upload_bytes), served.token)
    return SecurityHeaders(HostCheck(gated) if loopback_only else gated)
