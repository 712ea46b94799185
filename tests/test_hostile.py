"""Hostile and careless clients (issue #19): nothing a client sends may grow the server's state
without bound, reach a 500, or let one key starve the others."""

from __future__ import annotations

import random
import string

from conftest import Api


async def test_junk_methods_and_paths_do_not_grow_the_metrics(make_api) -> None:
    api: Api = await make_api(backend="memory")
    before = len((await api.http.get("/metrics")).content)
    rng = random.Random(19)
    for i in range(2000):
        method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 400)))
        path = "/v1/" + "".join(rng.choices(string.ascii_lowercase + "/", k=rng.randint(1, 300)))
        response = await api.http.request(method, path if i % 2 else "/v1/files")
        assert 400 <= response.status_code < 500, (method[:20], response.status_code)
    scrape = (await api.http.get("/metrics")).text
    # Every junk method is counted under one label value, every junk path under "unmatched".
    assert 'method="other"' in scrape
    assert len(scrape) < before + 20_000, len(scrape)
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in scrape.splitlines()
        if line.startswith("filesapi_requests_total{") and 'method="other"' in line
    )
    assert counted == 2000
