"""Who may ask, and what every answer carries.

``TokenGate`` (ASGI): with a token, every route except ``/health`` needs
``Authorization: Bearer TOKEN`` (else 401 with a JSON error). The web page cannot put that
header on ``<img>`` / ``<audio>`` / ``<script>`` requests, so ``GET /?token=TOKEN`` sets an
HttpOnly, SameSite=Strict cookie holding it (and sends the browser on to ``/``, so the
token leaves the address bar and the history); the cookie is accepted for GET and HEAD,
and for other methods only beside the ``X-Genre-Tagger: 1`` header that the page's own
scripts send (a cross-site form cannot set it, and no CORS is ever allowed).

``SecurityHeaders`` (ASGI): ``nosniff``, no framing, no referrer, a same-origin-only
Content-Security-Policy, and ``no-store`` on the API.

``HostCheck`` (ASGI): without a token the server listens on loopback only, and answers only
requests whose ``Host`` names a loopback address: a web page cannot reach it through DNS
rebinding (its own name pointed at 127.0.0.1) and read the catalog.

``is_loopback(host)``: binding anywhere else without a token is refused (the CLI's check).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

COOKIE = "genre_tagger_token"
PAGE_HEADER = b"x-genre-tagger"
OPEN_PATHS = ("/health",)
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
       "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _same(given: str | bytes | None, token: bytes) -> bool:
    if given is None:
        return False
    if isinstance(given, str):
        given = given.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, token)


def query_token(scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


class TokenGate:
    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token.encode("utf-8") if token else None

    def allowed(self, scope) -> bool:
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer " and _same(authorization[7:].strip(), self.token):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
        except Exception:  # noqa: BLE001 - a malformed cookie header is just no cookie
            return False
        if COOKIE in cookie and _same(cookie[COOKIE].value, self.token):
            return scope["method"] in ("GET", "HEAD") or headers.get(PAGE_HEADER) == b"1"
        if scope["path"] == "/" and scope["method"] in ("GET", "HEAD"):
            return _same(query_token(scope), self.token)
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.token is None or scope["path"] in OPEN_PATHS or self.allowed(scope):
            return await self.app(scope, receive, send)
        body = json.dumps({"error": "missing or wrong token: send 'Authorization: Bearer TOKEN' "
                                    "(in a browser, open /?token=TOKEN once)"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        api = scope["path"].startswith("/api/")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {name.lower() for name, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                         (b"referrer-policy", b"no-referrer"), (b"content-security-policy", CSP.encode()),
                         (b"cross-origin-resource-policy", b"same-origin")]
                if api:
                    extra.append((b"cache-control", b"no-store"))
                headers += [(name, value) for name, value in extra if name not in names]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, with_headers)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_name(value: bytes) -> str:
    """The host of a ``Host`` header, without its port (``[::1]:8000`` -> ``::1``)."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class HostCheck:
    """Answers 400 (JSON) to requests whose ``Host`` is not a loopback name or address."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            name = host_name(dict(scope.get("headers") or []).get(b"host", b""))
            if not (name in LOOPBACK_NAMES or is_loopback(name)):
                body = json.dumps({"error": "this server answers only to loopback host names "
                                            "(start it with --token to serve other hosts)"}).encode()
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
