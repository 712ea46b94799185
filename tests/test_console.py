"""The web console (/console): its endpoints in process, and the page end to end in headless Chromium.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``, installed by scripts/test.sh), driven by
Playwright's Python API with ``executable_path``; Playwright's own browser download is never used.
The end-to-end test takes screenshots of the main views (into docs/screenshots/ with
FILESAPI_WRITE_SCREENSHOTS=1).
"""

from __future__ import annotations

import base64
import contextlib
import html.parser
import json
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from conftest import GA_HEADERS, Api, LiveServer
from filesapi.auth import create_key
from filesapi.http.console import CONSOLE_CSP, sdk_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots go to docs/screenshots when FILESAPI_WRITE_SCREENSHOTS=1 (to refresh the committed
# ones), else to a scratch folder: taken every run either way, so the views are exercised.
SCREENSHOTS = (
    Path(__file__).resolve().parent.parent / "docs" / "screenshots"
    if os.environ.get("FILESAPI_WRITE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "filesapi-console-screenshots"
)
KEY = "console-test-key"
KEY_HEADERS = {"x-api-key": KEY, "anthropic-version": "2026-10-21"}
VIEWPORT = {"width": 1280, "height": 760}


# -- content for uploads


def make_png(width: int = 240, height: int = 150) -> bytes:
    """A small gradient PNG, made here so the test needs no fixture files."""
    rows = b"".join(
        b"\x00"
        + bytes(
            channel
            for x in range(width)
            for channel in (201 - x * 120 // width, 97 + y * 100 // height, 63 + x * 150 // width)
        )
        for y in range(height)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def make_pdf(text: str = "filesapi console") -> bytes:
    """A one-page PDF with a line of text, with a correct xref table."""
    stream = f"BT /F1 24 Tf 40 120 Td ({text}) Tj ET".encode()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 320 240]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>",
        b"<</Length " + str(len(stream)).encode() + b">>stream\n" + stream + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<</Size {len(objects) + 1}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


NOTES = b"Console test notes\nline two: <b>not bold</b> & friends\n"
EVIL_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60" onload="window.top.__pwned=\'svg-onload\'">'
    b'<rect width="120" height="60" fill="#c00"/>'
    b"<script>window.top.__pwned='svg';console.log('PWNED svg');alert('svg')</script></svg>"
)
EVIL_HTML = (
    b"<!doctype html><h1>hi</h1><script>window.top.__pwned='html';console.log('PWNED html');alert('html')"
    b"</script><img src=x onerror=\"alert('img')\">"
)


# -- the in-process endpoints


class _PageScan(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...>")
            if value and re.match(r"(https?:)?//", value):
                self.problems.append(f"<{tag} {name}={value}>: another origin")
        if tag == "script":
            if not names.get("src"):
                self.problems.append("inline <script>")
            self.scripts.append(names.get("src") or "")
        if tag == "style":
            self.problems.append("inline <style>")


async def test_console_page_sets_a_strict_csp_and_has_no_inline_code(make_api: Any) -> None:
    api: Api = await make_api()
    response = await api.http.get("/console", headers={})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONSOLE_CSP
    assert "'unsafe-inline'" not in CONSOLE_CSP and "sandbox" not in CONSOLE_CSP
    scan = _PageScan()
    scan.feed(response.text)
    assert scan.problems == []
    assert len(scan.scripts) == 1 and re.fullmatch(r"console/static/\w+/console\.js", scan.scripts[0])
    assert '<script type="module" src="console/static/' in response.text
    slash = await api.http.get("/console/", headers={})
    assert (slash.status_code, slash.headers["location"]) == (308, "../console")


async def test_console_assets_are_served_with_types_and_etags(make_api: Any) -> None:
    api: Api = await make_api()
    page = (await api.http.get("/console", headers={})).text
    version = re.search(r"console/static/(\w+)/console\.js", page)
    assert version
    for name, media_type in (
        *(
            (f"{module}.js", "text/javascript")
            for module in ("console", "api", "state", "widgets", "files", "requests", "storage")
        ),
        ("console.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ):
        response = await api.http.get(f"/console/static/{version.group(1)}/{name}", headers={})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media_type)
        assert "immutable" in response.headers["cache-control"]
        # assets keep the strict default policy: only the page itself loosens it
        assert "sandbox" in response.headers["content-security-policy"]
        again = await api.http.get(
            f"/console/static/{name}", headers={"if-none-match": response.headers["etag"]}
        )
        assert again.status_code == 304
    missing = await api.http.get("/console/static/../routes.py", headers={})
    assert missing.status_code == 404
    stale = await api.http.get("/console/static/0ld/api.js", headers={})
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    assert (
        await api.http.get(f"/console/static/{version.group(1)}/pyproject.toml", headers={})
    ).status_code == 404
    unknown = await api.http.get("/console/static/secrets.txt", headers={})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"


async def test_console_endpoints_authorize_like_the_api(make_api: Any) -> None:
    api: Api = await make_api()
    for path in ("/v1/console/requests", "/v1/console/storage"):
        no_key = await api.http.get(path, headers={"authorization": "", "anthropic-version": "2026-10-21"})
        assert no_key.status_code == 401
        assert no_key.json()["error"]["type"] == "authentication_error"
        assert no_key.json()["request_id"] == no_key.headers["request-id"]
        no_version = await api.http.get(path, headers={"authorization": "Bearer k", "anthropic-version": ""})
        assert no_version.status_code == 400
    bad = await api.http.get("/v1/console/requests?after_seq=x")
    assert bad.status_code == 400 and "after_seq" in bad.json()["error"]["message"]
    assert (await api.http.get("/v1/console/requests?limit=0")).status_code == 400


async def test_console_requests_show_only_the_callers_workspace(make_api: Any) -> None:
    api: Api = await make_api(auth="keys", admin_key="the-admin-key", headers={})
    metadata = api.state.service.metadata
    key_a = (await create_key(metadata, "team-a")).key
    key_b = (await create_key(metadata, "team-b")).key
    headers_a = {"x-api-key": key_a, "anthropic-version": "2023-06-01"}
    headers_b = {
        "authorization": f"Bearer {key_b}",
        "anthropic-version": "2026-10-21",
        "user-agent": "Anthropic/Python 2.12.0",
    }
    admin = {"x-api-key": "the-admin-key", "anthropic-version": "2023-06-01"}
    upload_a = await api.upload(b"aaa", "a.txt", headers=headers_a)
    upload_b = await api.upload(b"bbbb", "b.txt", headers=headers_b)
    unauthenticated = await api.http.get("/v1/files", headers={"x-api-key": "nope", "anthropic-version": "x"})
    unmatched = await api.http.get("/nowhere")
    assert (upload_a.status_code, upload_b.status_code, unauthenticated.status_code) == (200, 200, 401)

    seen_a = await api.http.get("/v1/console/requests", headers=headers_a)
    assert seen_a.status_code == 200
    body_a = seen_a.json()
    assert body_a["all_workspaces"] is False
    assert [(r["method"], r["path"], r["status"]) for r in body_a["data"]] == [("POST", "/v1/files", 200)]
    row = body_a["data"][0]
    assert row["request_id"] == upload_a.headers["request-id"]
    assert row["workspace"] == "team-a" and row["dialect"] == "ga" and row["mutating"] is True
    assert row["duration_ms"] >= 0 and row["bytes_in"] > 3

    body_b = (await api.http.get("/v1/console/requests", headers=headers_b)).json()
    assert [r["request_id"] for r in body_b["data"]] == [upload_b.headers["request-id"]]
    assert body_b["data"][0]["sdk"] == "Python SDK 2.12.0"

    everything = await api.http.get("/v1/console/requests", headers=admin)
    ids = [r["request_id"] for r in everything.json()["data"]]
    for response in (upload_a, upload_b, unauthenticated, unmatched):
        assert response.headers["request-id"] in ids
    assert everything.json()["all_workspaces"] is True
    # the console's own polling is left out unless asked for, and no key is ever shown
    assert not any(r["route"].startswith("/v1/console") for r in everything.json()["data"])
    with_console = (await api.http.get("/v1/console/requests?include_console=true", headers=admin)).json()
    assert any(r["route"] == "/v1/console/requests" for r in with_console["data"])
    for text in (everything.text, json.dumps(with_console), seen_a.text):
        assert key_a not in text and key_b not in text and "the-admin-key" not in text

    # polling: after_seq=last_seq gives only what came since
    last = body_a["last_seq"]
    assert (await api.http.get(f"/v1/console/requests?after_seq={last}", headers=headers_a)).json()[
        "data"
    ] == []
    again = await api.upload(b"more", "c.txt", headers=headers_a)
    newer = (await api.http.get(f"/v1/console/requests?after_seq={last}", headers=headers_a)).json()
    assert [r["request_id"] for r in newer["data"]] == [again.headers["request-id"]]
    assert newer["last_seq"] > last
    # with several worker processes: after=PROCESS:SEQ,... (a process not named starts at 0)
    me = newer["process"]
    mine_only = await api.http.get(f"/v1/console/requests?after=other-1:99999,{me}:{last}", headers=headers_a)
    assert [r["request_id"] for r in mine_only.json()["data"]] == [again.headers["request-id"]]
    unknown = await api.http.get("/v1/console/requests?after=other-1:99999", headers=headers_a)
    assert len(unknown.json()["data"]) == 2
    bad = await api.http.get(f"/v1/console/requests?after={me}:x", headers=headers_a)
    assert bad.status_code == 400


async def test_console_sequence_numbers_say_nothing_about_other_workspaces(make_api: Any) -> None:
    """A workspace's seq and last_seq count its own requests only: another workspace's traffic
    between two polls leaves them where they were (a global counter would jump by its size)."""
    api: Api = await make_api(auth="keys", admin_key="the-admin-key", headers={})
    metadata = api.state.service.metadata
    headers_a = {"x-api-key": (await create_key(metadata, "team-a")).key, "anthropic-version": "2023-06-01"}
    headers_b = {"x-api-key": (await create_key(metadata, "team-b")).key, "anthropic-version": "2023-06-01"}
    await api.http.get("/v1/files", headers=headers_a)
    first = (await api.http.get("/v1/console/requests?include_console=true", headers=headers_a)).json()
    for _ in range(7):  # another workspace's activity
        await api.http.get("/v1/files", headers=headers_b)
    await api.http.get("/v1/files", headers=headers_a)
    second = (
        await api.http.get(
            f"/v1/console/requests?include_console=true&after_seq={first['last_seq']}", headers=headers_a
        )
    ).json()
    # team-a made: list, console poll, list, (this poll is recorded after it answers)
    assert [r["seq"] for r in first["data"]] == [1]
    assert first["last_seq"] == 1
    assert [(r["seq"], r["path"]) for r in second["data"]] == [(2, "/v1/console/requests"), (3, "/v1/files")]
    assert second["last_seq"] == 3
    assert all(r["workspace"] == "team-a" for r in first["data"] + second["data"])
    # team-b's numbers are its own as well
    own_b = (await api.http.get("/v1/console/requests", headers=headers_b)).json()
    assert [r["seq"] for r in own_b["data"]] == list(range(1, 8)) and own_b["last_seq"] == 7


async def test_console_storage_per_workspace_and_for_the_admin(make_api: Any) -> None:
    api: Api = await make_api(auth="keys", admin_key="the-admin-key", workspace_quota=10_000, headers={})
    metadata = api.state.service.metadata
    key_a = (await create_key(metadata, "team-a")).key
    key_b = (await create_key(metadata, "team-b")).key
    headers_a = {"x-api-key": key_a, "anthropic-version": "2023-06-01"}
    headers_b = {"x-api-key": key_b, "anthropic-version": "2023-06-01"}
    await api.upload(b"x" * 1000, "a1.bin", headers=headers_a)
    await api.upload(b"x" * 500, "a2.bin", headers=headers_a)

    mine = (await api.http.get("/v1/console/storage", headers=headers_a)).json()
    assert mine["workspace"]["name"] == "team-a" and mine["admin"] is False and mine["auth"] == "keys"
    assert [(w["name"], w["files"], w["bytes"]) for w in mine["workspaces"]] == [("team-a", 2, 1500)]
    assert mine["quota_bytes"] == 10_000 and mine["workspaces"][0]["used_fraction"] == pytest.approx(0.15)
    assert mine["total"] == {"files": 2, "bytes": 1500}

    empty = (await api.http.get("/v1/console/storage", headers=headers_b)).json()
    assert [(w["name"], w["files"], w["bytes"]) for w in empty["workspaces"]] == [("team-b", 0, 0)]

    admin = (
        await api.http.get(
            "/v1/console/storage", headers={"x-api-key": "the-admin-key", "anthropic-version": "2023-06-01"}
        )
    ).json()
    assert admin["admin"] is True and admin["all_workspaces"] is True
    by_name = {w["name"]: (w["files"], w["bytes"]) for w in admin["workspaces"]}
    assert by_name["team-a"] == (2, 1500) and by_name["team-b"] == (0, 0)
    assert admin["total"]["bytes"] == 1500


@pytest.mark.parametrize(
    ("user_agent", "sdk"),
    [
        ("Anthropic/Python 2.12.0", "Python SDK 2.12.0"),
        ("Anthropic/JS 0.71.2", "JS SDK 0.71.2"),
        ("Anthropic/Go 1.19.0", "Go SDK 1.19.0"),
        ("Anthropic/Java 2.9.1", "Java SDK 2.9.1"),
        ("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0", "browser"),
        ("curl/8.5.0", "curl/8.5.0"),
        ("filesapi-cli", "filesapi-cli"),
        ("", ""),
    ],
)
def test_sdk_names_from_user_agents(user_agent: str, sdk: str) -> None:
    assert sdk_of(user_agent) == sdk


def test_no_console_flag_serves_no_console(server_factory: Any) -> None:
    server: LiveServer = server_factory("--memory", "--no-console")
    for path in ("/console", "/console/static/console.js", "/v1/console/requests", "/v1/console/storage"):
        response = httpx.get(server.base_url + path, headers=GA_HEADERS)
        assert response.status_code == 404, path
        assert response.json()["error"]["type"] == "not_found_error"
    assert httpx.get(server.base_url + "/v1/files", headers=GA_HEADERS).status_code == 200


# -- the browser


@dataclass
class Watch:
    """What a page did that it should not: dialogs (alert/confirm), script errors, console output."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the web console is tested in Debian's Chromium. "
            "Install it with `apt-get install -y chromium` (scripts/test.sh does).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[tuple[Any, Watch]]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch = Watch()
    watch.attach(page)
    yield page, watch
    context.close()


def sign_in(page: Any, server: LiveServer, key: str = KEY) -> None:
    from playwright.sync_api import expect

    page.goto(server.base_url + "/console")
    expect(page.locator("#signin-form")).to_be_visible()
    page.fill("#signin-key", key)
    page.click("#signin-submit")


def drop_files(page: Any, selector: str, files: list[tuple[str, str, bytes]]) -> None:
    """Drag and drop, as a user does: dragenter/dragover/drop events carrying a DataTransfer."""
    payload = [{"name": n, "type": t, "data": base64.b64encode(d).decode()} for n, t, d in files]
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, { type: f.type }));
            }
            return transfer;
        }""",
        payload,
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, event, {"dataTransfer": transfer})


def shoot(page: Any, name: str, height: int = VIEWPORT["height"]) -> None:
    """A screenshot of the view (see SCREENSHOTS), without toasts, focus or hover."""
    page.evaluate(
        "() => { document.getElementById('toasts').replaceChildren(); document.activeElement?.blur(); }"
    )
    page.mouse.move(1, VIEWPORT["height"] - 1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SCREENSHOTS / name), clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
    )


def api_upload(server: LiveServer, name: str, content_type: str, data: bytes, path: str = "/v1/files") -> str:
    response = httpx.post(
        server.base_url + path, headers=KEY_HEADERS, files={"file": (name, data, content_type)}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


@pytest.mark.slow
def test_console_end_to_end(server_factory: Any, tab: tuple[Any, Watch]) -> None:
    from playwright.sync_api import expect

    page, watch = tab
    server: LiveServer = server_factory("--memory", "--workspace-quota", "250KB")
    scoped_id = api_upload(
        server, "session-output.csv", "text/csv", b"a,b\n1,2\n", "/v1/admin/files?scope_id=sesn_console01"
    )

    response = page.goto(server.base_url + "/console")
    assert response is not None and response.headers["content-security-policy"] == CONSOLE_CSP
    sign_in(page, server)
    expect(page.locator("#view-files")).to_be_visible()
    expect(page.locator("#who-name")).to_contain_text("default")
    assert page.evaluate("sessionStorage.getItem('filesapi.console.key')") == KEY
    assert page.evaluate("localStorage.length") == 0
    expect(page.locator("#files-body tr")).to_have_count(1)

    # upload three files by dropping them on the drop zone
    png, pdf = make_png(), make_pdf()
    drop_files(
        page,
        "#dropzone",
        [
            ("notes.txt", "text/plain", NOTES),
            ("chart.png", "image/png", png),
            ("report.pdf", "application/pdf", pdf),
        ],
    )
    expect(page.locator(".upload.done")).to_have_count(3)
    expect(page.locator(".upload.done progress").first).to_have_attribute("value", "1")
    expect(page.locator("#files-body tr")).to_have_count(4)
    notes_row = page.locator("#files-body tr", has_text="notes.txt")
    expect(notes_row.locator("td.size")).to_have_text(f"{len(NOTES)} B")
    expect(notes_row.locator("td.size")).to_have_attribute("data-bytes", str(len(NOTES)))
    expect(page.locator("#files-body tr", has_text="chart.png").locator("td.size")).to_have_attribute(
        "data-bytes", str(len(png))
    )
    listed = httpx.get(server.base_url + "/v1/files", headers=KEY_HEADERS).json()["data"]
    by_name = {f["filename"]: f for f in listed}
    assert by_name["notes.txt"]["size_bytes"] == len(NOTES) and by_name["report.pdf"]["size_bytes"] == len(
        pdf
    )
    notes_id = by_name["notes.txt"]["id"]
    # newest first, as the API lists them
    assert page.locator("#files-body tr").evaluate_all("rows => rows.map(r => r.dataset.id)") == [
        f["id"] for f in listed
    ]

    # filters: by name over the loaded files, by scope on the server
    page.fill("#filter-name", "CHART")
    expect(page.locator("#files-body tr")).to_have_count(1)
    expect(page.locator("#files-body tr")).to_contain_text("chart.png")
    page.fill("#filter-name", "")
    expect(page.locator("#files-body tr")).to_have_count(4)
    page.fill("#filter-scope", "sesn_console01")
    expect(page.locator("#files-body tr")).to_have_count(1)
    expect(page.locator(f"#files-body tr[data-id='{scoped_id}']")).to_contain_text("sesn_console01")
    page.fill("#filter-scope", "")
    expect(page.locator("#files-body tr")).to_have_count(4)
    shoot(page, "console-files.png")

    # metadata and previews: text, image, PDF
    notes_row.click()
    expect(page.locator("#details")).to_be_visible()
    expect(page.locator("#details-name")).to_have_text("notes.txt")
    expect(page.locator("#details-meta")).to_contain_text(notes_id)
    expect(page.locator("#details-meta")).to_contain_text(f"{len(NOTES)} bytes")
    expect(page.locator("#preview pre")).to_have_text(NOTES.decode())
    page.locator("#files-body tr", has_text="report.pdf").click()
    expect(page.locator("#preview iframe")).to_have_attribute("src", re.compile(r"^blob:"))
    page.locator("#files-body tr", has_text="chart.png").click()
    image = page.locator("#preview img")
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function("() => document.querySelector('#preview img')?.naturalWidth === 240")
    shoot(page, "console-preview.png")

    # download: the stored name and the exact bytes
    page.locator("#files-body tr", has_text="notes.txt").click()
    expect(page.locator("#details-name")).to_have_text("notes.txt")
    with page.expect_download() as download_info:
        page.click("#details-download")
    download = download_info.value
    assert download.suggested_filename == "notes.txt"
    assert Path(download.path()).read_bytes() == NOTES

    # delete, with a confirmation that can be cancelled
    notes_row.locator("button.delete").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("notes.txt")
    page.click("#confirm-cancel")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(page.locator("#files-body tr")).to_have_count(4)
    notes_row.locator("button.delete").click()
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted_info:
        page.click("#confirm-ok")
    delete_request_id = deleted_info.value.headers["request-id"]
    assert deleted_info.value.status == 200
    expect(page.locator("#files-body tr")).to_have_count(3)
    expect(page.locator("#details")).to_be_hidden()
    gone = httpx.get(f"{server.base_url}/v1/files/{notes_id}", headers=KEY_HEADERS)
    assert gone.status_code == 404

    # another client's call shows up too, with its SDK; and its upload appears in the file list
    client = anthropic.Anthropic(base_url=server.base_url, api_key=KEY, max_retries=0)
    client.files.list()
    sdk_upload = client.files.upload(file=("from-sdk.txt", b"uploaded by the SDK", "text/plain"))
    expect(page.locator(f"#files-body tr[data-id='{sdk_upload.id}']")).to_be_visible(timeout=10_000)

    # the request log
    page.click("#tab-requests")
    expect(page.locator("#view-requests")).to_be_visible()
    rows = page.locator("#requests-body tr")
    post = rows.filter(has_text="POST").filter(has_text="/v1/files").first
    expect(post.locator(".status")).to_have_text("200")
    content = rows.filter(has_text=f"/v1/files/{notes_id}/content").first
    expect(content).to_contain_text("GET")
    expect(content.locator(".status")).to_have_text("200")
    delete_row = page.locator("#requests-body tr", has_text=delete_request_id)
    expect(delete_row).to_contain_text("DELETE")
    expect(delete_row).to_contain_text(f"/v1/files/{notes_id}")
    expect(delete_row.locator(".status")).to_have_text("200")
    expect(delete_row.locator("td.rid")).to_have_text(re.compile(r"^req_\w+$"))
    expect(delete_row).to_contain_text("browser")
    sdk_rows = rows.filter(has_text=f"Python SDK {anthropic.__version__}")
    expect(sdk_rows.filter(has_text="GET")).to_have_count(1)
    expect(sdk_rows.filter(has_text="POST").locator(".status")).to_have_text("200")
    missing = httpx.get(f"{server.base_url}/v1/files/file_missing", headers=KEY_HEADERS)
    expect(
        page.locator("#requests-body tr", has_text=missing.headers["request-id"]).locator(".status")
    ).to_have_text("404")
    assert all(rid.startswith("req_") for rid in page.locator("#requests-body td.rid").all_inner_texts())
    page.check("#requests-errors")  # the two 404s: the check that notes.txt is gone, and file_missing
    expect(rows).to_have_count(2)
    expect(rows.locator(".status")).to_have_text(["404", "404"])
    page.uncheck("#requests-errors")
    shoot(page, "console-requests.png", height=560)

    # the storage summary, with its chart
    page.click("#tab-storage")
    row = page.locator("#storage-body tr[data-workspace='default']")
    expect(row.locator("td.files")).to_have_text("4")
    stored = sum(
        f["size_bytes"] for f in httpx.get(server.base_url + "/v1/files", headers=KEY_HEADERS).json()["data"]
    )
    expect(row.locator("td.bytes")).to_have_attribute("title", f"{stored} bytes")
    expect(page.locator("#storage-chart svg rect.bar")).to_have_count(1)
    expect(page.locator("#storage-cards")).to_contain_text(f"{stored / 250_000 * 100:.1f}%")
    shoot(page, "console-storage.png", height=440)

    # sign out forgets the key
    page.click("#sign-out")
    expect(page.locator("#signin-form")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0

    assert watch.dialogs == [] and watch.errors == []
    assert not [m for m in watch.console if "Content Security Policy" in m or m.startswith("error")], (
        watch.console
    )


@pytest.mark.slow
def test_uploaded_svg_and_html_never_run(server_factory: Any, tab: tuple[Any, Watch]) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    page, watch = tab
    server: LiveServer = server_factory("--memory")
    svg_id = api_upload(server, "evil.svg", "image/svg+xml", EVIL_SVG)
    html_id = api_upload(server, "evil.html", "text/html", EVIL_HTML)
    fake_pdf_id = api_upload(server, "fake.pdf", "application/pdf", EVIL_HTML)
    sign_in(page, server)
    expect(page.locator("#files-body tr")).to_have_count(3)

    page.locator(f"#files-body tr[data-id='{svg_id}']").click()
    expect(page.locator("#preview img")).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function("() => document.querySelector('#preview img')?.naturalWidth === 120")

    page.locator(f"#files-body tr[data-id='{html_id}']").click()
    expect(page.locator("#preview pre")).to_have_text(EVIL_HTML.decode())  # its source, as text
    expect(page.locator("#preview iframe, #preview img")).to_have_count(0)

    page.locator(f"#files-body tr[data-id='{fake_pdf_id}']").click()
    expect(page.locator("#preview")).to_contain_text("not a PDF")
    expect(page.locator("#preview iframe")).to_have_count(0)

    with page.expect_download() as download_info:
        page.locator(f"#files-body tr[data-id='{html_id}'] button.download").click()
    assert Path(download_info.value.path()).read_bytes() == EVIL_HTML

    # Even opened directly from the server's origin (with the key), the content is only ever a
    # download (Content-Disposition: attachment, CSP sandbox), never a page.
    direct = page.context.new_page()
    watch.attach(direct)
    direct.set_extra_http_headers(KEY_HEADERS)
    for file_id, body in ((svg_id, EVIL_SVG), (html_id, EVIL_HTML)):
        with direct.expect_download() as direct_download, contextlib.suppress(PlaywrightError):
            direct.goto(f"{server.base_url}/v1/files/{file_id}/content")
        assert Path(direct_download.value.path()).read_bytes() == body
    raw = httpx.get(f"{server.base_url}/v1/files/{svg_id}/content", headers=KEY_HEADERS)
    assert raw.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in raw.headers["content-security-policy"]
    page.wait_for_timeout(300)

    assert page.evaluate("window.__pwned") is None
    assert watch.dialogs == [], watch.dialogs
    assert not [m for m in watch.console if "PWNED" in m], watch.console
    assert watch.errors == []


@pytest.mark.slow
def test_wrong_key_shows_a_clear_error(server_factory: Any, tab: tuple[Any, Watch]) -> None:
    from playwright.sync_api import expect

    page, _ = tab
    server: LiveServer = server_factory("--memory", "--auth", "keys")
    sign_in(page, server, "sk-fapi-not-a-real-key")
    error = page.locator("#signin-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Invalid API key.")
    expect(error).to_contain_text("401 authentication_error")
    expect(error.locator(".rid")).to_have_text(re.compile(r"^req_\w+$"))
    expect(page.locator("#view-files")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    page.fill("#signin-key", "   ")
    page.click("#signin-submit")
    expect(error).to_have_text("Enter an API key.")
