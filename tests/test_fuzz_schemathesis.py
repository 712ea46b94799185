"""Schemathesis against a real server process, driven by the server's own /openapi.json.

The server runs with ``--auth keys`` and a key made by ``filesapi keys create``, so schemathesis'
``ignored_auth`` check (the request again without a key and with a made-up one must be refused) means
something: under ``--auth open`` any key works, and the control test below shows the check then fails.

Every check schemathesis has runs, in every phase (examples, coverage, fuzzing, stateful), positive
and negative data: no 5xx, responses, status codes, content types and headers as the document says,
invalid data rejected, valid data accepted, missing required headers refused, unexpected methods 405
with ``Allow``, deleted files gone, auth enforced. Dictionaries feed it real file ids, real page cursors,
the workspace's name and id and the beta flag, so the cases reach past the 404s and 403s.

What the document cannot say is handled one rule at a time, each proven on the request and the answer
(``DocumentedDivergences``): a ``filter_failure`` hook drops a "valid data rejected" failure only when
the request breaks one of the documented rules (WIRE.md: GA answers ``after_id``/``before_id`` with
400, ``ids[]`` with ``page``/``limit`` is 400, a cursor the server did not issue is 400, a download of
a ``downloadable: false`` file is 400, ...) and the 400 names that rule; and an "invalid data
accepted" failure only for an empty query value (read as not given) or ``ids[]`` beyond ``maxItems``
in the beta dialect (which ignores the GA-only parameter) or with at most 100 distinct ids. Everything else fails the test. The dropped ones are
counted, by rule, in the figures.

On top of schemathesis, every recorded answer is checked for what the document does not spell out:
a ``request-id``, ``nosniff`` and a CSP on every response, the error envelope on every error, the exact
fields of each dialect on every file and page, and no key anywhere in an answer.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.engine import events
from schemathesis.openapi.checks import IgnoredAuth, RejectedPositiveData

from conftest import LiveServer
from figures import record
from filesapi.http.dialect import BETA_FLAG, is_beta
from filesapi.ids import is_file_id

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FILESAPI_FUZZ_EXAMPLES", "100"))
ADMIN_KEY = "fuzz-admin-key-0123456789abcdef"
WORKSPACE = "fuzz-ws"
SCOPE = "sesn_fuzz"
REQUEST_ID = re.compile(r"req_01[1-9A-HJ-NP-Za-km-z]{22}")
# The exact fields of a file and of a page, per dialect (WIRE.md).
FILE_FIELDS = {"id", "type", "filename", "mime_type", "size_bytes", "created_at", "downloadable", "scope"}
FILE_FIELDS_BY_DIALECT = {"beta": FILE_FIELDS, "ga": FILE_FIELDS | {"expires_at"}}
PAGE_FIELDS_BY_DIALECT = {
    "beta": {"data", "first_id", "last_id", "has_more", "next_page"},
    "ga": {"data", "next_page"},
}


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "filesapi", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@dataclass
class Seeded:
    """What the fuzzer is given to reach real files: ids, cursors, the workspace's name and id."""

    server: LiveServer
    key: str
    workspace_id: str
    file_ids: list[str]
    deleted_id: str
    cursors: list[str]
    headers: dict[str, str] = field(default_factory=dict)


def _seed(server: LiveServer, key: str) -> Seeded:
    base = server.base_url
    ga = {"x-api-key": key, "anthropic-version": "2026-10-21"}
    beta = {**ga, "anthropic-version": "2023-06-01", "anthropic-beta": BETA_FLAG}
    ids = []
    for i in range(6):
        files = {"file": (f'seed {i} ü;"x".txt', b"seed" * i, "text/plain")}
        response = httpx.post(base + "/v1/files", files=files, headers=beta if i % 2 else ga, timeout=30)
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    admin = {"x-api-key": ADMIN_KEY, "anthropic-version": "2023-06-01"}
    for downloadable in ("true", "false"):
        response = httpx.post(
            f"{base}/v1/admin/files",
            params={"workspace": WORKSPACE, "scope_id": SCOPE, "downloadable": downloadable},
            files={"file": ("tool.png", b"\x89PNG\r\n\x1a\nxxxx")},
            headers=admin,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    deleted = httpx.post(base + "/v1/files", files={"file": ("gone.txt", b"gone")}, headers=ga).json()["id"]
    assert httpx.delete(f"{base}/v1/files/{deleted}", headers=ga).status_code == 200
    first = httpx.get(base + "/v1/files", params={"limit": 2}, headers=ga).json()
    second = httpx.get(base + "/v1/files", params={"limit": 3, "page": first["next_page"]}, headers=ga).json()
    cursors = [first["next_page"], second["next_page"]]
    assert all(c and c.startswith("page_") for c in cursors)
    workspace_id = httpx.get(base + "/v1/console/storage", headers=ga).json()["workspace"]["id"]
    return Seeded(server, key, workspace_id, ids, deleted, cursors, ga)


def _query(url: str) -> dict[str, list[str]]:
    """Every value of each query parameter, as sent (empty ones too)."""
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def _last(query: Mapping[str, list[str]], name: str) -> str | None:
    """The value the server reads: the last one, and an empty value counts as not given."""
    values = query.get(name) or []
    return values[-1] if values and values[-1] != "" else None


def path_is(url: str, path: str) -> bool:
    return urlsplit(url).path == path


def _error(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _header_values(headers: Mapping[str, Any], name: str) -> list[str]:
    """Header values from a requests/schemathesis header mapping (str or list values, any case)."""
    out: list[str] = []
    for key, value in headers.items():
        if key.lower() == name:
            out.extend(value if isinstance(value, list) else [value])
    return out


class DocumentedDivergences:
    """What the OpenAPI document cannot express, each tied to its rule in WIRE.md (or the server's
    documented paging rules) and proven on the request. Schema-valid requests refused: the request
    breaks exactly that rule, and the answer is a 400 ``invalid_request_error`` that names it.
    Schema-invalid requests accepted: only ``ids[]`` beyond ``maxItems`` where the server has a
    documented reason to accept it."""

    def __init__(self, seeded: Seeded) -> None:
        self.seeded = seeded
        self.dropped: collections.Counter[str] = collections.Counter()

    def rule(
        self, method: str, url: str, headers: Mapping[str, Any], status: int, content: bytes
    ) -> str | None:
        error = _error(content)
        if status != 400 or error.get("type") != "invalid_request_error":
            return None
        message = str(error.get("message", ""))
        path = urlsplit(url).path
        query = _query(url)
        ga = not is_beta(_header_values(headers, "anthropic-beta"))
        after, before, page = _last(query, "after_id"), _last(query, "before_id"), _last(query, "page")
        ids = [i for name in ("ids[]", "ids") for i in query.get(name, []) if i]
        if method == "GET" and path == "/v1/files":
            if "is a beta parameter" in message and ga and (after or before):
                # WIRE.md: "the hosted GA service answers after_id/before_id with 400".
                return "GA list with after_id/before_id"
            if "ids cannot be combined" in message and ga and ids and (page or _last(query, "limit")):
                # WIRE.md: "ids[] mixed with page/limit is a 400".
                return "GA ids[] with page or limit"
            if "must be a file id" in message and any(v and not is_file_id(v) for v in (after, before)):
                # Paging keys are ids this API returned; anything else cannot be a position.
                return "after_id/before_id not a file id"
            if "page cannot be combined" in message and page and (after or before):
                return "page cursor with after_id/before_id"
            if "Invalid page cursor" in message and page and page not in self.seeded.cursors:
                # WIRE.md: "a bad page cursor is a 400" (cursors are sealed; only the server makes them).
                return "page cursor not issued by the server"
        match = re.fullmatch(r"/v1/files/([^/]+)/content", path)
        if (
            method == "GET"
            and match
            and error.get("details", {}).get("error_code") == "file_not_downloadable"
        ):
            # WIRE.md: download of a file with downloadable: false is 400 file_not_downloadable.
            file_id = match.group(1)
            meta = httpx.get(f"{self.seeded.server.base_url}/v1/files/{file_id}", headers=self.seeded.headers)
            if meta.status_code == 200 and meta.json()["downloadable"] is False:
                return "download of a file with downloadable: false"
        return None

    def accepted_rule(
        self, case: Any, method: str, url: str, headers: Mapping[str, Any], status: int, body: bytes = b""
    ) -> str | None:
        """Negative data the server rightly accepts, judged per negated component (all must qualify):
        an empty query value (the server reads it as not given, and every query parameter is
        optional); ``ids[]`` beyond ``maxItems`` in beta (a GA-only parameter, WIRE.md, that beta
        ignores) or with at most 100 distinct ids in GA (the server counts distinct ids); a malformed
        ``Authorization`` beside a valid ``x-api-key`` (either scheme suffices, x-api-key is read first)."""
        if not 200 <= status < 300:
            return None
        data = case.meta.phase.data if case is not None and case.meta is not None else None
        components = [(m.parameter_location.value, m.parameter) for m in getattr(data, "mutations", ())]
        if not components and getattr(data, "parameter", None) and data.parameter_location is not None:
            components = [(data.parameter_location.value, data.parameter)]
        if not components:
            return None
        sent = _query(url)
        beta = is_beta(_header_values(headers, "anthropic-beta"))
        reasons = []
        for location, name in components:
            values = sent.get(name or "", [])
            if location == "query" and values and set(values) == {""}:
                reasons.append("empty query value read as not given")
            elif location == "query" and name == "ids[]" and path_is(url, "/v1/files") and method == "GET":
                if beta:
                    reasons.append("beta list ignores the GA-only ids[]")
                elif len({v for v in values if v}) <= 100:
                    # The server counts distinct, non-empty ids (service.list_ids); see the report.
                    reasons.append("GA ids[] over 100 items but at most 100 distinct")
                else:
                    return None
            elif (
                location == "body"
                and name == "expires_in_seconds"
                and body.count(b'name="expires_in_seconds"') <= 1
            ):
                # A form has no arrays: [] sends no part (the field left out), [n] one valid part.
                # More than one part is refused by the server (400), so it never reaches here.
                reasons.append("an array form field is at most one part on the wire")
            elif (
                location == "header"
                and (name or "").lower() == "authorization"
                and _header_values(headers, "x-api-key") == [self.seeded.key]
            ):
                reasons.append("malformed Authorization beside a valid x-api-key")
            else:
                return None
        return " + ".join(sorted(set(reasons)))

    def keep(self, failure: Any, case: Any, response: Any) -> bool:
        request = response.request
        if isinstance(failure, RejectedPositiveData):
            rule = self.rule(
                request.method, request.url, request.headers, response.status_code, response.content
            )
        elif isinstance(failure, AcceptedNegativeData):
            body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
            rule = self.accepted_rule(
                case, request.method, request.url, request.headers, response.status_code, body
            )
        else:
            return True
        if rule is None:
            return True
        self.dropped[rule] += 1
        return False


def _config(seeded: Seeded, *, seed: int, max_examples: int, admin_key: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": seed,
            "base-url": seeded.server.base_url,
            # Only the key: anthropic-version and anthropic-beta are generated from the document
            # (so a missing or malformed version is tested too).
            "headers": {"x-api-key": seeded.key},
            "workers": 1,
            "continue-on-failure": True,
            "request-timeout": 30,
            "cache": {"enabled": False},
            "generation": {
                "max-examples": max_examples,
                "mode": "all",
                "no-shrink": True,
                "database": "none",
            },
            "checks": {"enabled": True},
            "dictionaries": {
                "file_ids": {"values": [*seeded.file_ids, seeded.deleted_id]},
                "cursors": {"values": seeded.cursors},
                # A NUL byte is a value PostgreSQL cannot store: it must be a client error, not a 5xx.
                "scopes": {"values": [SCOPE, "sesn\x00nul"]},
                "workspaces": {"values": [WORKSPACE, seeded.workspace_id]},
                "admin_workspace": {"values": ["default"]},
                "beta": {"values": [BETA_FLAG, f"other-2025-01-01, {BETA_FLAG}", f"{BETA_FLAG},{BETA_FLAG}"]},
            },
            "parameters": {
                "path.file_id": {"dictionary": "file_ids", "probability": 0.6},
                "query.after_id": {"dictionary": "file_ids", "probability": 0.6},
                "query.before_id": {"dictionary": "file_ids", "probability": 0.6},
                "query.page": {"dictionary": "cursors", "probability": 0.6},
                "query.scope_id": {"dictionary": "scopes", "probability": 0.5},
                "header.anthropic-workspace-id": {"dictionary": "workspaces", "probability": 0.8},
                "header.anthropic-beta": {"dictionary": "beta", "probability": 0.5},
            },
            "operations": [
                {
                    # The admin endpoint with the admin key, creating files in the fuzzed workspace.
                    "include-operation-id": "adminCreateFile",
                    "headers": {"x-api-key": admin_key},
                    "parameters": {
                        "query.workspace": {"dictionary": "workspaces", "probability": 1.0},
                        "header.anthropic-workspace-id": {
                            "dictionary": "admin_workspace",
                            "probability": 1.0,
                        },
                    },
                }
            ],
        }
    )


@dataclass
class Run:
    operations: int = 0
    cases: int = 0
    interactions: list[Any] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    failure_types: collections.Counter[str] = field(default_factory=collections.Counter)
    checks_run: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _describe(label: str, name: str, failure: Any, interaction: Any) -> str:
    text = f"{label}: {name}: {failure.title}: {failure.message.strip()[:300]}"
    if interaction is not None:
        request = interaction.request
        text += f"\n    {request.method} {request.uri}"
        text += f"\n    anthropic headers: { {k: v for k, v in request.headers.items() if k.lower().startswith('anthropic')} }"
        if interaction.response is not None:
            text += f"\n    -> {interaction.response.status_code} {interaction.response.content[:300]!r}"
    return text


def _run(schema: Any) -> Run:
    run = Run(operations=sum(1 for _ in schema.get_all_operations()))
    started = time.monotonic()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            run.cases += len(recorder.cases)
            run.interactions.extend(recorder.interactions.values())
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    run.checks_run[check.name] += 1
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        run.failure_types[type(failure).__name__] += 1
                        run.failures.append(
                            _describe(recorder.label, check.name, failure, recorder.interactions.get(case_id))
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            run.errors.append(repr(getattr(event, "info", None) or getattr(event, "exception", event)))
    run.seconds = time.monotonic() - started
    return run


def _dialect(request_headers: Mapping[str, Any]) -> str:
    return "beta" if is_beta(_header_values(request_headers, "anthropic-beta")) else "ga"


def _invariant_problems(interaction: Any, secrets: list[str]) -> Iterator[str]:
    """What every answer must satisfy beyond the document."""
    request, response = interaction.request, interaction.response
    if response is None:
        yield f"{request.method} {request.uri}: no response (network error)"
        return
    where = f"{request.method} {request.uri} -> {response.status_code}"
    headers = {k.lower(): v for k, v in response.headers.items()}
    first = {k: v[0] if isinstance(v, list) else v for k, v in headers.items()}
    if response.status_code >= 500:
        yield f"{where}: server error {response.content[:300]!r}"
    if not REQUEST_ID.fullmatch(first.get("request-id", "")):
        yield f"{where}: request-id header missing or malformed: {first.get('request-id')!r}"
    if first.get("x-content-type-options") != "nosniff":
        yield f"{where}: no x-content-type-options: nosniff"
    if "default-src 'none'" not in first.get("content-security-policy", ""):
        yield f"{where}: no restrictive content-security-policy"
    blob = json.dumps(headers) + response.content.decode("utf-8", "replace")
    for secret in secrets:
        if secret in blob:
            yield f"{where}: the answer contains a key"
    if response.status_code >= 400 and request.method != "HEAD":
        if not first.get("content-type", "").startswith("application/json"):
            yield f"{where}: error is not JSON ({first.get('content-type')!r})"
            return
        body = json.loads(response.content)
        if body.get("type") != "error" or body.get("request_id") != first.get("request-id"):
            yield f"{where}: error envelope wrong or request_id differs from the header: {body!r}"
        return
    path = urlsplit(request.uri).path
    if response.status_code != 200 or not first.get("content-type", "").startswith("application/json"):
        return
    body = json.loads(response.content)
    dialect = _dialect(request.headers)
    if request.method == "GET" and path == "/v1/files":
        if set(body) != PAGE_FIELDS_BY_DIALECT[dialect]:
            yield f"{where}: {dialect} page has fields {sorted(body)}"
        files = body.get("data", [])
        ids = [f["id"] for f in files]
        if ids != sorted(ids, reverse=True):
            yield f"{where}: page not newest first: {ids}"
        if dialect == "beta" and (body.get("first_id"), body.get("last_id")) != (
            (ids[0], ids[-1]) if ids else (None, None)
        ):
            yield f"{where}: first_id/last_id do not match the page"
    elif (
        request.method in ("GET", "POST") and re.fullmatch(r"/v1/files(/[^/]+)?", path)
    ) or path == "/v1/admin/files":
        files = [body]
    else:
        return
    for item in files:
        if set(item) != FILE_FIELDS_BY_DIALECT[dialect]:
            yield f"{where}: {dialect} file has fields {sorted(item)}"


def _start(
    server_factory: Any, tmp_path: Path, auth: str, database_url: str | None = None
) -> tuple[LiveServer, str]:
    data = tmp_path / f"fuzz-{auth}"
    storage = ["--data-dir", str(data), *(["--database-url", database_url] if database_url else [])]
    if auth == "keys":
        key = _cli("keys", "create", "--workspace", WORKSPACE, *storage)
        server = server_factory("--auth", "keys", "--admin-key", ADMIN_KEY, *storage)
    else:
        key = "any-key-works-under-open-auth"
        server = server_factory("--auth", "open", *storage)
    return server, key


@pytest.mark.parametrize(("backend", "examples"), [("sqlite", MAX_EXAMPLES), ("postgres", MAX_EXAMPLES // 2)])
def test_schemathesis_finds_nothing(
    server_factory: Any, tmp_path: Path, request: pytest.FixtureRequest, backend: str, examples: int
) -> None:
    database_url = (
        request.getfixturevalue("postgres_server").create_database() if backend == "postgres" else None
    )
    server, key = _start(server_factory, tmp_path, "keys", database_url)
    seeded = _seed(server, key)
    seed = int(os.environ.get("FILESAPI_FUZZ_SEED") or random.SystemRandom().getrandbits(32))
    config = _config(seeded, seed=seed, max_examples=examples, admin_key=ADMIN_KEY)
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json", config=config)
    rejections = DocumentedDivergences(seeded)

    @schema.hook
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        return rejections.keep(failure, case, response)

    run = _run(schema)
    problems = [p for i in run.interactions for p in _invariant_problems(i, [key, ADMIN_KEY])]
    server_errors = sum(
        1 for i in run.interactions if i.response is not None and i.response.status_code >= 500
    )
    dialects = collections.Counter(_dialect(i.request.headers) for i in run.interactions)
    statuses = collections.Counter(i.response.status_code for i in run.interactions if i.response is not None)
    log = server.log()
    reproduce = f"(reproduce with FILESAPI_FUZZ_SEED={seed})"

    # The figures first, so a failing run is recorded as it was.
    record(
        "fuzz",
        "schemathesis against /openapi.json" + (" (PostgreSQL)" if backend == "postgres" else ""),
        operations=run.operations,
        cases=run.cases,
        max_examples_per_operation=examples,
        phases="examples, coverage, fuzzing, stateful",
        checks=len([n for n, c in run.checks_run.items() if c]),
        check_runs=sum(run.checks_run.values()),
        failures=len(run.failures),
        server_errors=server_errors,
        broken_answers=len(problems),
        beta_requests=dialects["beta"],
        ga_requests=dialects["ga"],
        documented_divergences_excused=sum(rejections.dropped.values()),
        excused_by_rule=[f"{rule}: {n}" for rule, n in sorted(rejections.dropped.items())] or "none",
        failure_kinds=sorted(run.failure_types) or "none",
        seconds=round(run.seconds, 1),
        seed=seed,
    )

    assert not run.errors, f"schemathesis errors {reproduce}:\n" + "\n".join(run.errors)
    assert not run.failures, f"{len(run.failures)} failures {reproduce}:\n" + "\n\n".join(run.failures[:20])
    assert not problems, f"{len(problems)} broken answers {reproduce}:\n" + "\n".join(problems[:30])
    assert server_errors == 0
    assert "Traceback" not in log, log[-3000:]
    assert key not in log and ADMIN_KEY not in log
    # The run reached real behaviour, not just refusals: files made, read, downloaded, deleted, in both
    # dialects, and every check ran (ignored_auth included, on an authenticated success).
    assert run.operations >= 8
    assert dialects["beta"] > examples and dialects["ga"] > examples, dialects
    assert statuses[200] > examples and statuses[404] > 0 and statuses[401] > 0 and statuses[405] > 0, (
        statuses
    )
    for name in (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "unsupported_method",
        "ignored_auth",
        "use_after_free",
        "ensure_resource_availability",
    ):
        assert run.checks_run[name] > 0, f"check {name} never ran: {dict(run.checks_run)}"


def test_ignored_auth_check_catches_open_auth(server_factory: Any, tmp_path: Path) -> None:
    """Control: the same check against ``--auth open``, where any key is accepted, must fail. So the
    clean ``ignored_auth`` result above comes from the server refusing, not from the check idling."""
    server, key = _start(server_factory, tmp_path, "open")
    config = SchemathesisConfig.from_dict(
        {
            "seed": 1,
            "base-url": server.base_url,
            "headers": {"x-api-key": key, "anthropic-version": "2023-06-01"},
            "workers": 1,
            "cache": {"enabled": False},
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "generation": {"max-examples": 5, "mode": "positive", "no-shrink": True, "database": "none"},
            "checks": {"enabled": False, "ignored_auth": {"enabled": True}},
        }
    )
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json", config=config)
    schema = schema.include(operation_id="listFiles")
    run = _run(schema)
    assert run.failure_types[IgnoredAuth.__name__] > 0, run.failures or run.checks_run


# -- what the fuzzer found, kept as plain regression tests


@pytest.mark.parametrize("backend", ["memory", "disk", "postgres"])
@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/v1/files", {"scope_id": "sesn\x00x"}),
        ("GET", "/v1/files", {"scope_id": "\x00"}),
        ("POST", "/v1/admin/files", {"scope_id": "sesn\x00x"}),
        ("POST", "/v1/admin/files", {"workspace": "team\x00x"}),
    ],
)
async def test_nul_bytes_in_parameters_are_client_errors(
    make_api: Any, backend: str, method: str, path: str, params: dict[str, str]
) -> None:
    """A NUL byte in a text parameter is the client's doing: never a 5xx (PostgreSQL refuses NUL in
    text, so it must not reach the database). A filter that matches nothing, or a 400, are both fine."""
    api = await make_api(backend=backend)
    await api.upload(b"x", "a.txt")
    files = {"file": ("a.txt", b"x")} if method == "POST" else None
    response = await api.http.request(method, path, params=params, files=files)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200 and method == "GET":
        assert response.json()["data"] == []
