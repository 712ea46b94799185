"""``--rate-limit`` is one bucket per client across every worker and replica on a metadata database."""

from __future__ import annotations

import concurrent.futures
import itertools
import time

import httpx
import pytest

from conftest import GA_HEADERS, Api, LiveServer, set_http_options, start_server, stop_server
from figures import record
from filesapi.errors import BackendUnavailable
from filesapi.http.guard import HttpOptions
from servers_pg import PostgresServer

RATE = 60
REQUESTS = 150


def _burst(servers: list[LiveServer]) -> tuple[list[httpx.Response], float]:
    """REQUESTS requests from one client, 12 at a time, spread over ``servers`` (each on a new
    connection, so a server's workers share them)."""
    spread = itertools.cycle(servers)
    urls = [next(spread).base_url + "/v1/files" for _ in range(REQUESTS)]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda url: httpx.get(url, headers=GA_HEADERS, timeout=30), urls))
    return responses, time.monotonic() - started


def _check_burst(responses: list[httpx.Response], elapsed: float) -> int:
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    accepted = statuses.count(200)
    # One bucket: its 60 tokens, plus the 1 a second it refills while the burst lasts. A bucket
    # per process would let each of them accept 60.
    assert RATE <= accepted <= RATE + int(elapsed) + 1, (accepted, elapsed)
    for refused in (r for r in responses if r.status_code == 429):
        body = refused.json()
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert int(refused.headers["retry-after"]) >= 1
        assert 0 < int(refused.headers["retry-after-ms"]) <= 1000 * int(refused.headers["retry-after"])
    return accepted


def test_rate_limit_is_shared_by_the_workers_of_a_server(server_factory) -> None:
    server: LiveServer = server_factory("--workers", "2", "--rate-limit", str(RATE))
    responses, elapsed = _burst([server])
    accepted = _check_burst(responses, elapsed)
    assert "Traceback" not in server.log() and "rate limits are per process" not in server.log()
    record("overload", f"rate limit {RATE}/min, {REQUESTS} requests, one server with 2 workers",
           accepted=accepted, limited_with_429=REQUESTS - accepted, seconds=round(elapsed, 1))  # fmt: skip


@pytest.fixture
def three_replicas(postgres_server: PostgresServer, tmp_path) -> list[LiveServer]:
    database_url = postgres_server.create_database()
    servers = []
    for i in range(3):
        (tmp_path / f"r{i}").mkdir()
        servers.append(
            start_server(
                tmp_path / f"r{i}",
                "--database-url",
                database_url,
                "--workers",
                "2",
                "--rate-limit",
                str(RATE),
            )
        )
    yield servers
    for server in servers:
        stop_server(server)


def test_rate_limit_is_shared_by_three_replicas_on_postgres(three_replicas: list[LiveServer]) -> None:
    responses, elapsed = _burst(three_replicas)
    accepted = _check_burst(responses, elapsed)
    # Each replica refused some: none of them kept a bucket of its own.
    for i, server in enumerate(three_replicas):
        assert any(r.status_code == 429 for r in responses[i::3])
        assert "Traceback" not in server.log() and "rate limits are per process" not in server.log()
    record("overload", f"rate limit {RATE}/min, {REQUESTS} requests, 3 replicas x 2 workers on PostgreSQL",
           accepted=accepted, limited_with_429=REQUESTS - accepted, seconds=round(elapsed, 1))  # fmt: skip


async def test_busy_client_leases_tokens_in_batches(make_api, monkeypatch) -> None:
    api: Api = await make_api(backend="disk")
    set_http_options(api, HttpOptions(rate_limit_per_minute=12_000))
    store = api.state.service.metadata
    calls: list[int] = []
    lease = store.lease_tokens

    async def counted(
        client: str, rate: int, want: int, now_us: int, *, prune: bool = False
    ) -> tuple[int, float]:
        calls.append(want)
        return await lease(client, rate, want, now_us, prune=prune)

    monkeypatch.setattr(store, "lease_tokens", counted)
    statuses = [(await api.http.get("/v1/files")).status_code for _ in range(300)]
    assert statuses == [200] * 300
    # Leases double while spent within a second, up to half a second of the rate (100 tokens).
    assert len(calls) < 20, calls
    assert max(calls) == 100 and sum(calls) >= 300


async def test_rate_limit_fails_open_to_a_bucket_per_process(make_api, monkeypatch) -> None:
    api: Api = await make_api(backend="disk")
    set_http_options(api, HttpOptions(rate_limit_per_minute=3))

    async def unreachable(*args: object, **kwargs: object) -> tuple[int, float]:
        raise BackendUnavailable("The metadata database is unreachable: test.")

    monkeypatch.setattr(api.state.service.metadata, "lease_tokens", unreachable)
    statuses = [(await api.http.get("/v1/files")).status_code for _ in range(4)]
    # Served (the limit does not take the API down with the database), still limited per process.
    assert statuses == [200, 200, 200, 429]
