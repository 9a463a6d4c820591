"""The HTML a view is served as: one shell (navigation, the view's first figures inline as JSON, the script).

The figures travel inside the page, so the first render needs no second request; the script then polls the same
figures as JSON (`/api/...`) and redraws when they change. Everything is escaped: ids and messages from the
analytics or the URL are text, never markup.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

VIEWS = (("overview", "/", "Overview"), ("training", "/training", "Training"), ("rollouts", "/rollouts", "Rollouts"),
         ("errors", "/errors", "Errors"), ("feedback", "/feedback", "Feedback"))


def finite(value: Any) -> Any:
    """The value with every non-finite float as None: JSON has no NaN, and JSON.parse refuses it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _inline_json(value: Any) -> str:
    # Inside <script>: "</script>" or "<!--" in a message must not end the element.
    return json.dumps(finite(value), separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(view: str, title: str, *, data: Any = None, error: dict[str, str] | None = None, api: str = "",
         refresh_s: float = 2.0, version: str = "") -> str:
    nav = "".join(f'<a href="{href}" class="{"active" if name == view or (view == "rollout" and name == "rollouts") else ""}">{label}</a>'
                  for name, href, label in VIEWS)
    boot = {"view": view, "data": data, "error": error, "api": api, "refresh_ms": int(refresh_s * 1000)}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Lightwire</title>
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/dashboard.css?v={html.escape(version)}">
</head><body>
<header><span class="brand">Lightwire</span><nav>{nav}</nav><span id="live" class="live" title="live updates">●</span></header>
<main><h1 id="title">{html.escape(title)}</h1><div id="banner" class="banner" hidden></div><div id="view"></div></main>
<div id="tip" class="tip" hidden></div>
<script id="boot" type="application/json">{_inline_json(boot)}</script>
<script src="/static/core.js?v={html.escape(version)}"></script>
<script src="/static/views.js?v={html.escape(version)}"></script>
</body></html>"""


def message_page(title: str, message: str, *, status_view: str = "", form: bool = False, next_path: str = "/") -> str:
    """A page that only says something: not found, a key needed, a failure."""
    body = f'<p class="message">{html.escape(message)}</p>'
    if form:
        body += ('<form method="post" action="/login" class="login"><label>API key <input type="password" name="key" '
                 'autocomplete="current-password" autofocus></label>'
                 f'<input type="hidden" name="next" value="{html.escape(next_path)}">'
                 '<button type="submit">Open the dashboard</button></form>')
    nav = "".join(f'<a href="{href}">{label}</a>' for _, href, label in VIEWS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · Lightwire</title>
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/dashboard.css"></head><body>
<header><span class="brand">Lightwire</span><nav>{nav}</nav></header>
<main class="{html.escape(status_view)}"><h1>{html.escape(title)}</h1>{body}</main></body></html>"""
