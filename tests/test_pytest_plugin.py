"""The pytest plugin, used from a fresh temp project as a user would."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import anthropic
import pytest


def test_upload_and_list(anthropic_client):
    uploaded = anthropic_client.files.upload(file=("notes.txt", b"hello", "text/plain"))
    assert [f.id for f in anthropic_client.files.list()] == [uploaded.id]
    assert anthropic_client.files.download(uploaded.id).read() == b"hello"


def test_starts_empty(anthropic_client):
    assert list(anthropic_client.files.list()) == []


def test_tool_made_scoped_file(filesapi_server, anthropic_client):
    made = filesapi_server.create_file(b"chart", "chart.png", scope_id="sesn_1")
    listed = list(anthropic_client.beta.files.list(scope_id="sesn_1"))
    assert [f.id for f in listed] == [made["id"]]
    assert listed[0].scope.id == "sesn_1"


async def test_async_client(async_anthropic_client):
    uploaded = await async_anthropic_client.files.upload(file=b"async bytes")
    meta = await async_anthropic_client.files.retrieve_metadata(uploaded.id)
    assert meta.size_bytes == 11


def test_errors_are_typed(anthropic_client):
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.files.retrieve_metadata("file_011ngdqPKvKnuZD5F3TtAmv7")
"""


def test_plugin_fixtures_in_a_fresh_project(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_session_isolation_keeps_files(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilesapi_isolation = session\nfilesapi_args = --profile hosted\n")
    pytester.makepyfile(
        test_user="""
def test_a(anthropic_client):
    meta = anthropic_client.files.upload(file=b"kept")
    assert meta.downloadable is False  # --profile hosted reached the server


def test_b(anthropic_client):
    assert len(list(anthropic_client.files.list())) == 1
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


CONTROL_TESTS = """
import anthropic
import pytest


def test_retries_ride_through_two_529s(filesapi_server, anthropic_client):
    rule = filesapi_server.faults.add(operation="upload", status=529, times=2)
    anthropic_client.files.upload(file=("a.txt", b"hello"))
    attempts = filesapi_server.requests(operation="upload")
    assert [a.status for a in attempts] == [200, 529, 529]  # newest first
    assert attempts[-1].fault == rule["id"] and attempts[0].sdk["language"] == "python"
    assert attempts[0].upload["size"] == 5


def test_rules_and_journal_do_not_leak_into_the_next_test(filesapi_server, anthropic_client):
    assert filesapi_server.faults.list() == []
    assert filesapi_server.requests(operation="upload") == []
    anthropic_client.files.list()  # would be a 529 if the last test's rule were still armed


def test_expiry_without_waiting(filesapi_server, anthropic_client):
    made = filesapi_server.create_file(b"soon", "soon.txt", expires_in_seconds=3600)
    filesapi_server.clock.advance(hours=2)
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.files.download(made["id"])


def test_the_clock_was_reset(filesapi_server):
    assert filesapi_server.clock.now()["offset_seconds"] == 0


def test_typos_are_refused(filesapi_server):
    with pytest.raises(RuntimeError, match="stauts"):
        filesapi_server.faults.add(operation="upload", stauts=529)
"""


def test_plugin_test_controls(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROL_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
