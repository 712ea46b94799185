"""The official Python SDK against a real filesapi server, in two versions at once.

- ``sdk_programs/python_flow.py`` (a standalone program) runs the whole flow with the newest SDK (this
  venv's ``anthropic``) and with the beta-era ``anthropic==1.1.0`` from a second venv
  (``.venv-sdk-1.1.0``, made on first use; or any interpreter named by ``FILESAPI_OLD_SDK_PYTHON``).
- Direct tests with the newest SDK cover what is awkward in that program: ``--profile hosted``,
  expired files, ``--auth keys`` isolation, revoked keys and the ``anthropic-workspace-id`` header.

Every program run and every test gets its own server, so counts are exact.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import FileExpiredError, FileNotDownloadableError

ROOT = Path(__file__).resolve().parent.parent
FLOW_PROGRAM = Path(__file__).resolve().parent / "sdk_programs" / "python_flow.py"
OLD_SDK_VERSION = "1.1.0"
OLD_SDK_VENV = ROOT / ".venv-sdk-1.1.0"
FILES_BETA = "files-api-2025-04-14"
ADMIN_KEY = "filesapi-test-admin-key"
ADMIN_HEADERS = {"x-api-key": "admin", "anthropic-version": "2023-06-01", "anthropic-beta": FILES_BETA}

ServerFactory = Callable[..., Any]


# -- interpreters


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _sdk_version(python: str | Path) -> str | None:
    probe = subprocess.run(
        [str(python), "-c", "import anthropic; print(anthropic.__version__)"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=120,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def _clean_env() -> dict[str, str]:
    """The environment for another interpreter: no SDK credentials or settings, no foreign venv."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_") and k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_clean_env())
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def old_sdk_python() -> str:
    """An interpreter with ``anthropic==1.1.0``: ``$FILESAPI_OLD_SDK_PYTHON``, or ``.venv-sdk-1.1.0``,
    created (python -m venv + pip install) when it is missing or incomplete."""
    override = os.environ.get("FILESAPI_OLD_SDK_PYTHON")
    if override:
        python = Path(override)
        assert python.exists(), f"FILESAPI_OLD_SDK_PYTHON={override} does not exist"
    else:
        python = _venv_python(OLD_SDK_VENV)
        if not python.exists():
            _run([sys.executable, "-m", "venv", str(OLD_SDK_VENV)])
        if _sdk_version(python) != OLD_SDK_VERSION:
            _run(
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                 f"anthropic=={OLD_SDK_VERSION}"]
            )  # fmt: skip
    version = _sdk_version(python)
    assert version == OLD_SDK_VERSION, f"{python} has anthropic {version}, expected {OLD_SDK_VERSION}"
    return str(python)


# -- the flow program


def run_flow(python: str, base_url: str, flow: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, str(FLOW_PROGRAM), "--base-url", base_url, "--api-key", "flow-test-key", "--flow", flow],
        capture_output=True,
        text=True,
        timeout=180,
        env=_clean_env(),
        cwd=str(ROOT),
    )


@pytest.mark.parametrize("backend", ["memory", "postgres+s3", "postgres+s3-redirect"])
@pytest.mark.parametrize(
    ("sdk", "flow"),
    [("newest", "ga"), ("newest", "beta"), (OLD_SDK_VERSION, "beta"), (OLD_SDK_VERSION, "ga")],
    ids=["newest-ga", "newest-beta", "sdk1.1.0-beta", "sdk1.1.0-ga"],
)
def test_flow_program(
    sdk: str, flow: str, backend: str, server_factory: ServerFactory, request: pytest.FixtureRequest
) -> None:
    """The whole flow through ``client.files`` (ga) or ``client.beta.files`` (beta).

    anthropic 1.1.0 already has ``client.files`` (GA shape: ``page``/``ids``/``expires_in_seconds``, sent
    with ``x-api-key`` and ``anthropic-version: 2023-06-01``), so it runs both flows too."""
    if sdk == "newest":
        python, expected_version = sys.executable, anthropic.__version__
    else:
        python, expected_version = request.getfixturevalue("old_sdk_python"), OLD_SDK_VERSION
    if backend == "memory":
        server = server_factory("--memory")
    else:  # the scale-out mix: PostgreSQL metadata, S3 blobs (downloads redirected to the bucket)
        s3 = request.getfixturevalue("s3_server")
        database_url = request.getfixturevalue("postgres_server").create_database()
        blob_url = s3.url() + ("&download_redirect=60" if backend.endswith("-redirect") else "")
        server = server_factory("--database-url", database_url, "--blob-url", blob_url, env=s3.env)
    result = run_flow(python, server.base_url, flow)
    print(result.stdout)
    print(result.stderr, file=sys.stderr)
    first_line = result.stdout.splitlines()[0] if result.stdout else ""
    assert first_line.startswith(f"anthropic {expected_version} "), f"ran with the wrong SDK: {first_line!r}"
    print(f"SDK VERSION USED: anthropic {expected_version} ({flow} flow)")
    request.node.user_properties.append(("anthropic_version", expected_version))
    failure = [line for line in result.stderr.splitlines() if line.startswith("FAIL")]
    assert result.returncode == 0, (
        f"python_flow.py ({flow} flow, anthropic {expected_version}) exited {result.returncode}: "
        f"{failure[-1] if failure else result.stderr[-2000:]}\n--- progress ---\n{result.stdout[-3000:]}"
        f"\n--- server log (tail) ---\n{server.log()[-2000:]}"
    )
    assert f"PASS: anthropic {expected_version}: {flow} flow(s) passed" in result.stdout
    redirected = [
        line
        for line in httpx.get(server.base_url + "/metrics").text.splitlines()
        if line.startswith("filesapi_requests_total{") and 'status="307"' in line
    ]
    assert bool(redirected) == backend.endswith("-redirect"), redirected


def test_newest_sdk_version_is_the_pinned_one() -> None:
    print(f"newest SDK in this venv: anthropic {anthropic.__version__}")
    assert anthropic.__version__ == "2.16.0"


# -- direct tests with the newest SDK


def sdk(base_url: str, api_key: str = "test-key") -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=30)


def admin_create(
    base_url: str, data: bytes, filename: str, headers: dict[str, str] | None = None, **query: str
) -> dict[str, Any]:
    response = httpx.post(
        base_url + "/v1/admin/files",
        params=query,
        headers=headers or ADMIN_HEADERS,
        files={"file": (filename, data, "text/plain")},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def body_error(exc: anthropic.APIStatusError) -> dict[str, Any]:
    assert isinstance(exc.body, dict), exc.body
    assert exc.body["type"] == "error"
    error: dict[str, Any] = exc.body["error"]
    return error


def test_hosted_profile_uploads_are_not_downloadable_tool_files_are(server_factory: ServerFactory) -> None:
    server = server_factory("--memory", "--profile", "hosted")
    client = sdk(server.base_url)

    upload = client.files.upload(file=("report.txt", b"uploaded by a user", "text/plain"))
    assert upload.downloadable is False
    assert client.files.retrieve_metadata(upload.id).downloadable is False
    for download in (
        lambda: client.files.download(upload.id),
        lambda: client.beta.files.download(upload.id),
        lambda: client.beta.files.download(upload.id, betas=[FILES_BETA]),
    ):
        with pytest.raises(anthropic.BadRequestError) as caught:
            download()
        assert isinstance(caught.value, FileNotDownloadableError), type(caught.value)
        assert caught.value.status_code == 400
        assert caught.value.error_code == "file_not_downloadable"
        error = body_error(caught.value)
        assert error["type"] == "invalid_request_error"
        assert error["details"]["error_code"] == "file_not_downloadable"
    # the metadata stays readable and listed
    assert upload.id in [f.id for f in client.files.list()]

    made = admin_create(server.base_url, b"made by a tool", "tool-output.txt", downloadable="true")
    meta = client.files.retrieve_metadata(made["id"])
    assert meta.downloadable is True
    assert meta.filename == "tool-output.txt"
    assert client.files.download(made["id"]).read() == b"made by a tool"
    assert client.beta.files.download(made["id"], betas=[FILES_BETA]).read() == b"made by a tool"


def test_expired_file_is_not_found_on_download_but_metadata_reads(server_factory: ServerFactory) -> None:
    server = server_factory("--memory")
    client = sdk(server.base_url)
    made = admin_create(server.base_url, b"short-lived", "short.txt", expires_in_seconds="1")
    meta = client.files.retrieve_metadata(made["id"])
    assert meta.expires_at is not None
    assert meta.expires_at - meta.created_at == timedelta(seconds=1)
    if datetime.now(UTC) < meta.expires_at - timedelta(milliseconds=300):
        assert client.files.download(made["id"]).read() == b"short-lived"  # not yet expired

    time.sleep(max(0.0, (meta.expires_at - datetime.now(UTC)).total_seconds()) + 0.2)
    for download in (
        lambda: client.files.download(made["id"]),
        lambda: client.beta.files.download(made["id"], betas=[FILES_BETA]),
    ):
        with pytest.raises(anthropic.NotFoundError) as caught:
            download()
        assert isinstance(caught.value, FileExpiredError), type(caught.value)
        assert caught.value.error_code == "file_expired"
        error = body_error(caught.value)
        assert error["type"] == "not_found_error"
        assert error["details"]["error_code"] == "file_expired"

    again = client.files.retrieve_metadata(made["id"])
    assert again.id == made["id"]
    assert again.expires_at == meta.expires_at
    assert again.size_bytes == len(b"short-lived")
    assert client.beta.files.retrieve_metadata(made["id"], betas=[FILES_BETA]).filename == "short.txt"


# -- --auth keys


@dataclass
class Key:
    key: str
    workspace_id: str


@dataclass
class KeysSetup:
    data_dir: Path
    a: Key
    a_spare: Key  # another key of workspace A, revoked by a test
    b: Key


def create_key(data_dir: Path, workspace: str) -> Key:
    result = _run([sys.executable, "-m", "filesapi", "keys", "create", "--workspace", workspace,
                   "--data-dir", str(data_dir)], timeout=60)  # fmt: skip
    match = re.search(r"for workspace \S+ \((wrkspc_\w+)\)", result.stderr)
    assert match, result.stderr
    return Key(key=result.stdout.strip().splitlines()[-1], workspace_id=match.group(1))


@pytest.fixture(scope="module")
def keys_setup(tmp_path_factory: pytest.TempPathFactory) -> KeysSetup:
    data_dir = tmp_path_factory.mktemp("keys") / "data"
    return KeysSetup(
        data_dir=data_dir,
        a=create_key(data_dir, "team-a"),
        a_spare=create_key(data_dir, "team-a"),
        b=create_key(data_dir, "team-b"),
    )


def keys_server(server_factory: ServerFactory, setup: KeysSetup) -> Any:
    return server_factory("--auth", "keys", "--data-dir", str(setup.data_dir), "--admin-key", ADMIN_KEY)


def test_keys_workspaces_are_isolated(
    keys_setup: KeysSetup, server_factory: ServerFactory, old_sdk_python: str
) -> None:
    server = keys_server(server_factory, keys_setup)
    a, b = sdk(server.base_url, keys_setup.a.key), sdk(server.base_url, keys_setup.b.key)
    assert keys_setup.a.workspace_id != keys_setup.b.workspace_id
    assert keys_setup.a_spare.workspace_id == keys_setup.a.workspace_id

    file_a = a.files.upload(file=("a.txt", b"secret of A", "text/plain"))
    file_b = b.files.upload(file=("b.txt", b"secret of B", "text/plain"))
    scoped_b = admin_create(
        server.base_url,
        b"tool file of B",
        "b-tool.txt",
        headers={**ADMIN_HEADERS, "x-api-key": ADMIN_KEY},
        workspace="team-b",
        scope_id="sesn_b",
    )
    assert b.files.retrieve_metadata(scoped_b["id"]).filename == "b-tool.txt"
    # sanity: each owner sees its own files
    assert b.files.retrieve_metadata(file_b.id).filename == "b.txt"
    assert a.files.download(file_a.id).read() == b"secret of A"

    for other in (file_b.id, scoped_b["id"]):
        for call in (
            lambda o=other: a.files.retrieve_metadata(o),
            lambda o=other: a.files.download(o),
            lambda o=other: a.files.delete(o),
            lambda o=other: a.beta.files.retrieve_metadata(o, betas=[FILES_BETA]),
            lambda o=other: a.beta.files.download(o, betas=[FILES_BETA]),
            lambda o=other: a.beta.files.delete(o, betas=[FILES_BETA]),
        ):
            with pytest.raises(anthropic.NotFoundError) as caught:
                call()
            assert body_error(caught.value)["type"] == "not_found_error"
    a_ids = [f.id for f in a.files.list(limit=1000)]
    assert file_a.id in a_ids
    assert file_b.id not in a_ids and scoped_b["id"] not in a_ids
    assert [f.id for f in a.files.list(ids=[file_b.id, scoped_b["id"], file_a.id])] == [file_a.id]
    beta_ids = [f.id for f in a.beta.files.list(limit=1000, betas=[FILES_BETA])]
    assert file_a.id in beta_ids and file_b.id not in beta_ids
    assert list(a.beta.files.list(scope_id="sesn_b", betas=[FILES_BETA])) == []
    # A's failed delete left B's files alone; B sees only its own
    b_ids = {f.id for f in b.files.list(limit=1000)}
    assert {file_b.id, scoped_b["id"]} <= b_ids and file_a.id not in b_ids
    assert b.files.download(file_b.id).read() == b"secret of B"
    # a second key of workspace A shares A's files
    assert file_a.id in [f.id for f in sdk(server.base_url, keys_setup.a_spare.key).files.list(limit=1000)]

    # the beta-era SDK (x-api-key, 2023-06-01, beta header) gets the same isolation
    script = (
        "import sys, anthropic\n"
        "c = anthropic.Anthropic(api_key=sys.argv[2], base_url=sys.argv[1], max_retries=0)\n"
        "ids = [f.id for f in c.beta.files.list(limit=1000)]\n"
        "assert sys.argv[3] in ids and sys.argv[4] not in ids, ids\n"
        "try:\n"
        "    c.beta.files.retrieve_metadata(sys.argv[4])\n"
        "    sys.exit('retrieve_metadata of the other workspace file succeeded')\n"
        "except anthropic.NotFoundError:\n"
        "    pass\n"
        "print('old sdk', anthropic.__version__, 'isolated')\n"
    )
    result = subprocess.run(
        [old_sdk_python, "-c", script, server.base_url, keys_setup.a.key, file_a.id, file_b.id],
        capture_output=True, text=True, timeout=120, env=_clean_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"old sdk {OLD_SDK_VERSION} isolated"
    print(result.stdout.strip())


def test_keys_bad_missing_and_revoked_keys_are_authentication_errors(
    keys_setup: KeysSetup, server_factory: ServerFactory
) -> None:
    server = keys_server(server_factory, keys_setup)
    made_up = "sk-fapi-" + keys_setup.a.key.removeprefix("sk-fapi-")[:12] + "-" + "x" * 44
    for bad in ("not-a-key", made_up, keys_setup.a.key + "x"):
        for call in (
            lambda k=bad: sdk(server.base_url, k).files.list(),
            lambda k=bad: sdk(server.base_url, k).files.upload(file=("x.txt", b"x", "text/plain")),
            lambda k=bad: sdk(server.base_url, k).beta.files.list(betas=[FILES_BETA]),
        ):
            with pytest.raises(anthropic.AuthenticationError) as caught:
                call()
            assert caught.value.status_code == 401
            assert body_error(caught.value)["type"] == "authentication_error"
    no_key = {"Authorization": anthropic.Omit(), "X-Api-Key": anthropic.Omit()}
    with pytest.raises(anthropic.AuthenticationError):
        sdk(server.base_url, keys_setup.a.key).files.list(extra_headers=no_key)

    spare = sdk(server.base_url, keys_setup.a_spare.key)
    kept = spare.files.upload(file=("before-revoke.txt", b"kept", "text/plain"))
    assert spare.files.retrieve_metadata(kept.id).id == kept.id  # the key works before it is revoked
    _run([sys.executable, "-m", "filesapi", "keys", "revoke", keys_setup.a_spare.key,
          "--data-dir", str(keys_setup.data_dir)], timeout=60)  # fmt: skip
    for call in (
        lambda: spare.files.list(),
        lambda: spare.files.retrieve_metadata(kept.id),
        lambda: spare.files.download(kept.id),
        lambda: spare.beta.files.list(betas=[FILES_BETA]),
    ):
        with pytest.raises(anthropic.AuthenticationError) as caught:
            call()
        assert body_error(caught.value)["type"] == "authentication_error"
    # the workspace's files outlive the revoked key; the other key of A still reads them
    assert sdk(server.base_url, keys_setup.a.key).files.download(kept.id).read() == b"kept"


def test_keys_workspace_header_must_match_the_key(
    keys_setup: KeysSetup, server_factory: ServerFactory
) -> None:
    server = keys_server(server_factory, keys_setup)
    a = sdk(server.base_url, keys_setup.a.key)
    mine, theirs = keys_setup.a.workspace_id, keys_setup.b.workspace_id
    made = a.files.upload(file=("ws.txt", b"workspace", "text/plain"), workspace_id=mine)
    assert a.files.retrieve_metadata(made.id, workspace_id=mine).id == made.id
    assert made.id in [f.id for f in a.files.list(workspace_id=mine, limit=1000)]
    assert a.files.download(made.id, workspace_id=mine).read() == b"workspace"
    for call in (
        lambda: a.files.list(workspace_id=theirs),
        lambda: a.files.retrieve_metadata(made.id, workspace_id=theirs),
        lambda: a.files.download(made.id, workspace_id=theirs),
        lambda: a.files.upload(file=("x.txt", b"x", "text/plain"), workspace_id=theirs),
        lambda: a.files.delete(made.id, workspace_id=theirs),
        lambda: a.beta.files.list(workspace_id=theirs, betas=[FILES_BETA]),
    ):
        with pytest.raises(anthropic.PermissionDeniedError) as caught:
            call()
        assert caught.value.status_code == 403
        assert body_error(caught.value)["type"] == "permission_error"
    # nothing was uploaded or deleted by the refused calls
    assert [f.id for f in a.files.list(ids=[made.id])] == [made.id]


# -- the newest SDK's beta resource (page cursors, no files beta header unless asked)


def test_newest_sdk_beta_resource_filters_by_scope_id(server_factory: ServerFactory) -> None:
    """``client.beta.files.list(scope_id=S)`` of the newest SDK sends ``GET /v1/files?scope_id=S`` with no
    ``anthropic-beta`` header (and no ``?beta=true``); the answer must still hold only the files of that
    scope, each with its ``scope``."""
    server = server_factory("--memory")
    client = sdk(server.base_url)
    plain = client.beta.files.upload(file=("plain.txt", b"plain", "text/plain"))
    scoped = [admin_create(server.base_url, b"s", f"s{i}.txt", scope_id="sesn_one")["id"] for i in range(2)]
    admin_create(server.base_url, b"o", "other.txt", scope_id="sesn_two")

    listed = list(client.beta.files.list(scope_id="sesn_one"))
    assert [f.id for f in listed] == scoped[::-1], (
        f"list(scope_id='sesn_one') returned {len(listed)} files, expected the 2 of that scope"
    )
    assert all(f.scope is not None and f.scope.id == "sesn_one" and f.scope.type == "session" for f in listed)
    meta = client.beta.files.retrieve_metadata(scoped[0])
    assert meta.scope is not None and meta.scope.id == "sesn_one", f"scope is {meta.scope!r}"
    assert client.beta.files.retrieve_metadata(plain.id).scope is None


def test_newest_sdk_beta_resource_with_files_beta_header_pages_everything(
    server_factory: ServerFactory,
) -> None:
    """Code that passes ``betas=["files-api-2025-04-14"]`` to the newest SDK's ``client.beta.files`` gets a
    beta-dialect list answer, but this SDK pages with ``page=next_page`` (``SyncPageCursor``)."""
    server = server_factory("--memory")
    client = sdk(server.base_url)
    made = [
        client.beta.files.upload(file=(f"f{i}.txt", b"x", "text/plain"), betas=[FILES_BETA]).id
        for i in range(5)
    ]
    first = client.beta.files.list(limit=2, betas=[FILES_BETA])
    assert [f.id for f in first.data] == made[::-1][:2]
    seen = [f.id for f in client.beta.files.list(limit=2, betas=[FILES_BETA])]
    assert seen == made[::-1], f"auto-pagination with the files beta header yielded {len(seen)} of 5 files"
