"""The web console: its page, static assets and the two read-only endpoints it needs."""

from __future__ import annotations

from starlette.routing import BaseRoute

__all__ = ["console_routes"]

console_routes: list[BaseRoute] = []
