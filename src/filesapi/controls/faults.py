"""Fault rules (``--test-controls``): what to do to which requests, shared by every worker.

A rule names an ``operation`` (or ``any``), optionally a ``workspace`` (name or id), how many
matching requests it hits (``times``, default no limit), with what ``probability`` (and ``seed``,
for a reproducible run), and one action: ``status`` (an error envelope), ``delay_ms``,
``disconnect`` or ``truncate_after_bytes`` (downloads). Rules live in the server's shared SQLite
file; each process caches them and reloads when the shared generation number moves, so a request
that no rule names costs one read of shared memory. Hits are claimed in one transaction, so
``times: 2`` is two hits for the whole server, whichever workers answer.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from filesapi.controls.journal import OPERATIONS
from filesapi.controls.shared import SharedState

__all__ = ["ERROR_TYPES", "FaultError", "FaultStore", "Rule", "parse_header", "parse_rule"]

# Status -> the error type the hosted service answers it with (the SDKs pick their typed error by
# status: 529 OverloadedError, 429 RateLimitError, 503 ServiceUnavailableError, ...).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
RETRY_AFTER_STATUSES = (429, 503, 529)
_ACTIONS = ("status", "delay_ms", "disconnect", "truncate_after_bytes")
_FIELDS = ("operation", "workspace", "times", "probability", "seed", "retry_after_seconds", *_ACTIONS)
_MAX_DELAY_MS = 600_000


class FaultError(ValueError):
    """A rule that cannot be armed; the message names the field."""


@dataclass(frozen=True)
class Rule:
    id: str
    operation: str = "any"
    workspace: str | None = None
    times: int | None = None
    probability: float = 1.0
    seed: int | None = None
    status: int | None = None
    retry_after_seconds: int | None = None
    delay_ms: int | None = None
    disconnect: bool = False
    truncate_after_bytes: int | None = None

    def matches(self, operation: str | None) -> bool:
        return operation is not None and (
            self.operation == operation or (self.operation == "any" and operation in OPERATIONS)
        )

    def as_json(self) -> dict[str, Any]:
        body = {k: v for k, v in asdict(self).items() if v is not None and v is not False}
        body.setdefault("probability", self.probability)
        return body


def _int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultError(f"{name} must be an integer from {low} to {high}, got {json.dumps(value)[:40]}.")
    return value


def parse_rule(body: object, rule_id: str | None = None) -> Rule:
    """A rule from its JSON; anything unknown or out of range is a ``FaultError`` naming it."""
    if not isinstance(body, Mapping):
        raise FaultError("A fault rule is a JSON object.")
    unknown = [k for k in body if k not in _FIELDS]
    if unknown:
        raise FaultError(
            f"Unknown fault rule fields: {', '.join(map(str, unknown))[:200]} (known: {', '.join(_FIELDS)})."
        )
    actions = [a for a in _ACTIONS if body.get(a) not in (None, False)]
    if len(actions) != 1:
        raise FaultError(
            f"A fault rule takes exactly one action of {', '.join(_ACTIONS)}; got {len(actions)}."
        )
    operation = body.get("operation", "any")
    if operation not in (*OPERATIONS, "any"):
        raise FaultError(
            f"operation must be one of {', '.join((*OPERATIONS, 'any'))}, got {json.dumps(operation)[:40]}."
        )
    workspace = body.get("workspace")
    if workspace is not None and (not isinstance(workspace, str) or not 0 < len(workspace) <= 200):
        raise FaultError("workspace must be a workspace name or id.")
    probability = body.get("probability", 1)
    if isinstance(probability, bool) or not isinstance(probability, int | float) or not 0 <= probability <= 1:
        raise FaultError(f"probability must be a number from 0 to 1, got {json.dumps(probability)[:40]}.")
    status = body.get("status")
    if status is not None and status not in ERROR_TYPES:
        raise FaultError(
            f"status must be one of {', '.join(map(str, ERROR_TYPES))}, got {json.dumps(status)[:40]}."
        )
    retry_after = body.get("retry_after_seconds")
    if retry_after is not None:
        if status is None:
            raise FaultError("retry_after_seconds goes with status.")
        retry_after = _int("retry_after_seconds", retry_after, 0, 3600)
    elif status in RETRY_AFTER_STATUSES:
        retry_after = 1
    disconnect = body.get("disconnect", False)
    if not isinstance(disconnect, bool):
        raise FaultError("disconnect must be true or false.")
    truncate = body.get("truncate_after_bytes")
    if truncate is not None:
        truncate = _int("truncate_after_bytes", truncate, 0, 1 << 50)
        if operation != "download":
            raise FaultError("truncate_after_bytes applies to downloads: use it with operation download.")
    return Rule(
        id=rule_id or "fault_" + secrets.token_hex(6),
        operation=str(operation),
        workspace=workspace,
        times=None if body.get("times") is None else _int("times", body.get("times"), 1, 1 << 31),
        probability=float(probability),
        seed=None if body.get("seed") is None else _int("seed", body.get("seed"), -(1 << 63), (1 << 63) - 1),
        status=status,
        retry_after_seconds=retry_after,
        delay_ms=None
        if body.get("delay_ms") is None
        else _int("delay_ms", body.get("delay_ms"), 0, _MAX_DELAY_MS),
        disconnect=disconnect,
        truncate_after_bytes=truncate,
    )


def parse_header(value: str, operation: str | None) -> Rule:
    """``x-filesapi-fault: status=529; retry_after_seconds=2`` (pairs split by ``;`` or ``,``)."""
    body: dict[str, object] = {}
    for pair in value.replace(",", ";").split(";"):
        if not pair.strip():
            continue
        name, sep, raw = pair.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep:
            raise FaultError(f"x-filesapi-fault: {pair.strip()[:40]!r} is not key=value.")
        if raw.lower() in ("true", "false"):
            body[name] = raw.lower() == "true"
        else:
            try:
                body[name] = json.loads(raw)
            except ValueError:
                body[name] = raw
    body.setdefault("operation", operation if operation in OPERATIONS else "any")
    return parse_rule(body, rule_id="header")


class FaultStore:
    def __init__(self, shared: SharedState) -> None:
        self.shared = shared
        self._generation = -1
        self._rules: list[Rule] = []

    def rules(self) -> list[Rule]:
        """Every armed rule, oldest first (cached until another process changes them)."""
        generation = self.shared.generation
        if generation != self._generation:
            rows = self.shared.read("SELECT id, rule FROM faults ORDER BY created, id")
            self._rules = [parse_rule(json.loads(str(r[1])), rule_id=str(r[0])) for r in rows]
            self._generation = generation
        return self._rules

    def add(self, rule: Rule) -> None:
        body = {k: v for k, v in rule.as_json().items() if k != "id"}
        with self.shared.transaction() as db:
            created = db.execute("SELECT COALESCE(MAX(created), 0) + 1 FROM faults").fetchone()[0]
            db.execute(
                "INSERT INTO faults (id, created, rule) VALUES (?, ?, ?)",
                (rule.id, created, json.dumps(body)),
            )
        self.shared.bump_generation()

    def listing(self) -> list[dict[str, Any]]:
        counts = {
            str(r[0]): (int(str(r[1])), int(str(r[2])))
            for r in self.shared.read("SELECT id, hits, seen FROM faults")
        }
        out = []
        for rule in self.rules():
            hits, seen = counts.get(rule.id, (0, 0))
            remaining = None if rule.times is None else max(rule.times - hits, 0)
            out.append({**rule.as_json(), "hits": hits, "matched": seen, "remaining": remaining})
        return out

    def delete(self, rule_id: str | None) -> int:
        with self.shared.transaction() as db:
            if rule_id is None:
                deleted = db.execute("DELETE FROM faults").rowcount
            else:
                deleted = db.execute("DELETE FROM faults WHERE id = ?", (rule_id,)).rowcount
        self.shared.bump_generation()
        return int(deleted)

    def claim(self, rule: Rule) -> bool:
        """Whether ``rule`` hits this matching request: its draw (seeded: the n-th matching request
        of the server always draws the same) and a hit left, counted for the whole server."""
        with self.shared.transaction() as db:
            row = db.execute(
                "UPDATE faults SET seen = seen + 1 WHERE id = ? RETURNING seen, hits", (rule.id,)
            ).fetchone()
            if row is None:
                return False  # deleted meanwhile
            seen, hits = int(row[0]), int(row[1])
            if rule.times is not None and hits >= rule.times:
                return False
            if rule.probability < 1:
                draw = (
                    random.Random(f"{rule.seed}:{seen}").random()
                    if rule.seed is not None
                    else random.random()
                )
                if draw >= rule.probability:
                    return False
            db.execute("UPDATE faults SET hits = hits + 1 WHERE id = ?", (rule.id,))
        return True
