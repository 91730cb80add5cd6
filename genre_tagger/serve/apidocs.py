"""The API's reference page, ``/api/docs``, rendered on the server from the app's OpenAPI
schema (``/openapi.json``): every route with its parameters and what it answers. Plain HTML
with the page's own stylesheet, so it works offline (Swagger UI would load from a CDN)."""

from __future__ import annotations

from html import escape
from typing import Any

METHODS = ("get", "post", "put", "delete", "head")


def _parameters(operation: dict[str, Any]) -> str:
    rows = []
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        kind = schema.get("type") or "/".join(s.get("type", "") for s in schema.get("anyOf", []) if s.get("type"))
        default = f" = {schema['default']!r}" if "default" in schema else ""
        rows.append(f"<li><code>{escape(parameter['name'])}</code> ({escape(parameter.get('in', ''))}, "
                    f"{escape(kind or 'any')}{escape(default)}){' required' if parameter.get('required') else ''}</li>")
    body = operation.get("requestBody", {}).get("content", {})
    rows += [f"<li>body: <code>{escape(kind)}</code></li>" for kind in body]
    return f"<ul>{''.join(rows)}</ul>" if rows else ""


def api_docs_html(schema: dict[str, Any]) -> str:
    """The reference page for an OpenAPI ``schema`` (a dict, as ``FastAPI.openapi()`` gives)."""
    sections = []
    for path, item in sorted(schema.get("paths", {}).items()):
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            about = escape((operation.get("description") or operation.get("summary") or "").strip())
            sections.append(f"<section><h3><code>{method.upper()} {escape(path)}</code></h3>"
                            f"<p>{about}</p>{_parameters(operation)}</section>")
    title = escape(f"{schema.get('info', {}).get('title', 'API')} {schema.get('info', {}).get('version', '')}")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}: API</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>"
            f"<body><main class=\"api-docs\"><h1>{title}: API</h1><p>Every answer is JSON; errors are "
            "<code>{\"error\": \"...\"}</code> with a 4xx status. Schema: <a href=\"/openapi.json\">"
            f"/openapi.json</a>.</p>{''.join(sections)}</main></body></html>")
