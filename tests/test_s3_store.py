"""The S3 blob store on a real SeaweedFS: the shared contract, plus what only S3 has (multipart
uploads left behind, bounded memory while streaming, the server going away and coming back)."""

from __future__ import annotations

import asyncio
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import crc32c
import pytest

from filesapi.blobs import BlobNotFound, BlobStore, ByteRange, open_blob_store
from filesapi.blobs.s3 import S3BlobStore, S3Location
from filesapi.errors import BackendUnavailable
from servers_s3 import SeaweedS3
from store_contracts import BlobStoreTests, _chunks, _read

MiB = 1 << 20


@pytest.fixture
def s3_env(s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test server's credentials, and nothing else AWS-ish from the outer environment."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    yield


@pytest.fixture
async def s3_store(s3_server: SeaweedS3, s3_env: None) -> AsyncIterator[S3BlobStore]:
    store = open_blob_store(s3_server.url())
    assert isinstance(store, S3BlobStore)
    yield store
    await store.close()


class TestS3BlobStore(BlobStoreTests):
    @pytest.fixture
    def store(self, s3_store: S3BlobStore) -> BlobStore:
        return s3_store


@asynccontextmanager
async def boto(server: SeaweedS3) -> AsyncIterator[Any]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    async with get_session().create_client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=config,
    ) as client:
        yield client


async def pending_uploads(server: SeaweedS3, store: S3BlobStore) -> list[str]:
    async with boto(server) as client:
        page = await client.list_multipart_uploads(Bucket=server.bucket, Prefix=store.location.key_prefix)
    return [upload["Key"] for upload in page.get("Uploads", [])]


async def generated(size: int, chunk: int = 64 * 1024, seed: bytes = b"") -> AsyncIterator[bytes]:
    """``size`` bytes in fresh ``chunk``-sized objects (as a request body arrives), never all at once."""
    block = (seed + os.urandom(MiB))[:MiB]
    for offset in range(0, size, chunk):
        n = min(chunk, size - offset)
        start = offset % MiB
        yield block[start : start + n] if start + n <= MiB else (block[start:] + block[: n - (MiB - start)])
        await asyncio.sleep(0)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def reset_peak_rss() -> int | None:
    """Reset the kernel's peak-RSS mark (Linux) and return the current RSS, or None if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return _status_kib("VmRSS")
    except (OSError, LookupError):
        return None


def peak_rss() -> int:
    return _status_kib("VmHWM")


def test_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    loc = S3Location.from_url("s3://bkt/a/b/?endpoint=http://127.0.0.1:9000/&region=eu-west-1")
    assert loc == S3Location(bucket="bkt", prefix="a/b", endpoint="http://127.0.0.1:9000", region="eu-west-1")
    assert loc.key_prefix == "a/b/"
    assert S3Location.from_url("s3://bkt") == S3Location("bkt", "", None, "us-east-1")
    assert S3Location.from_url("s3://bkt").key_prefix == ""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.example.test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert S3Location.from_url("s3://bkt/p") == S3Location(
        "bkt", "p", "https://s3.example.test", "ap-south-1"
    )
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    assert S3Location.from_url("s3://bkt/p").region == "us-west-2"
    for bad in (
        "s3:///p",
        "s3://bkt/a//b",
        "s3://bkt/../x",
        "s3://bkt?endpoint=ftp://x",
        "s3://bkt?color=red",
    ):
        with pytest.raises(ValueError):
            S3Location.from_url(bad)
    assert isinstance(open_blob_store("s3://bkt/p?endpoint=http://127.0.0.1:1"), S3BlobStore)


async def test_large_stream_is_multipart_and_memory_stays_bounded(
    s3_server: SeaweedS3, s3_store: S3BlobStore
) -> None:
    size = 64 * MiB
    expected = 0
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal expected, sent
        async for chunk in generated(size):
            expected = crc32c.crc32c(chunk, expected)
            sent += len(chunk)
            yield chunk

    rss_before = reset_peak_rss()
    tracemalloc.start()
    try:
        info = await s3_store.put("file_big64", body())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent == size and info.size == size
    assert info.checksum == f"crc32c:{expected:08x}"
    # Parts in flight hold references to their buffers: a few 8 MiB parts, never the 64 MiB
    # (measured: 19 MiB, the same for 256 MiB).
    assert peak < 40 * MiB, f"peak Python memory {peak / MiB:.1f} MiB while streaming 64 MiB"
    if rss_before is not None:  # the whole process, obstore's Rust buffers included
        growth = peak_rss() - rss_before
        assert growth < 48 * MiB, f"peak RSS grew {growth / MiB:.1f} MiB while streaming 64 MiB"

    async with boto(s3_server) as client:
        head = await client.head_object(
            Bucket=s3_server.bucket, Key=f"{s3_store.location.key_prefix}file_big64", ChecksumMode="ENABLED"
        )
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-8")  # eight 8 MiB parts, completed at the end
    assert head.get("ChecksumCRC64NVME")  # the S3 server checked every part's CRC64NVME

    got = 0
    received = 0
    async for chunk in await s3_store.open("file_big64"):
        got = crc32c.crc32c(chunk, got)
        received += len(chunk)
    assert (received, got) == (size, expected)
    tail = await _read(s3_store, "file_big64", ByteRange(size - 10, size - 1))
    assert len(tail) == 10
    await s3_store.delete("file_big64")


async def test_failed_upload_leaves_no_object_and_no_pending_upload(
    s3_server: SeaweedS3, s3_store: S3BlobStore
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        async for chunk in generated(20 * MiB):  # two parts sent before the failure
            yield chunk
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        await s3_store.put("file_broken", broken())
    assert not await s3_store.exists("file_broken")
    assert await pending_uploads(s3_server, s3_store) == []


async def test_cancelled_upload_leaves_no_object_and_no_pending_upload(
    s3_server: SeaweedS3, s3_store: S3BlobStore
) -> None:
    gate = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        async for chunk in generated(20 * MiB):
            yield chunk
        gate.set()
        await asyncio.sleep(3600)
        yield b"never"

    task = asyncio.create_task(s3_store.put("file_cancel", stalls()))
    await asyncio.wait_for(gate.wait(), 30)
    key = f"{s3_store.location.key_prefix}file_cancel"
    assert await pending_uploads(s3_server, s3_store) == [key]  # the upload had really begun
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await pending_uploads(s3_server, s3_store) == []
    assert not await s3_store.exists("file_cancel")


async def test_cancelled_while_parts_are_being_sent(s3_server: SeaweedS3, s3_store: S3BlobStore) -> None:
    """Cancellation can land inside obstore's write (waiting for a part to go out), not only in the
    caller's iterator: the upload must be aborted all the same."""
    for delay in (0.05, 0.15, 0.3):
        task = asyncio.create_task(s3_store.put("file_midwrite", generated(200 * MiB, chunk=MiB)))
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await pending_uploads(s3_server, s3_store) == []
        assert not await s3_store.exists("file_midwrite")


async def test_sweep_incomplete_aborts_abandoned_uploads(s3_server: SeaweedS3, s3_store: S3BlobStore) -> None:
    other = open_blob_store(s3_server.url())
    assert isinstance(other, S3BlobStore)
    mine = f"{s3_store.location.key_prefix}file_abandoned"
    theirs = f"{other.location.key_prefix}file_abandoned"
    async with boto(s3_server) as client:
        uploads = {}
        for key in (mine, theirs):
            made = await client.create_multipart_upload(Bucket=s3_server.bucket, Key=key)
            await client.upload_part(
                Bucket=s3_server.bucket, Key=key, UploadId=made["UploadId"], PartNumber=1, Body=b"x" * MiB
            )
            uploads[key] = made["UploadId"]
        await s3_store.put("file_done", _chunks(b"done"))

        assert await s3_store.sweep_incomplete(3600) == 0  # too young
        assert await pending_uploads(s3_server, s3_store) == [mine]
        await asyncio.sleep(1.1)  # S3 reports upload times in whole seconds
        assert await s3_store.sweep_incomplete(0.5) == 1
        assert await pending_uploads(s3_server, s3_store) == []
        assert await pending_uploads(s3_server, other) == [theirs]  # another prefix is not ours
        assert await _read(s3_store, "file_done") == b"done"
        await client.abort_multipart_upload(Bucket=s3_server.bucket, Key=theirs, UploadId=uploads[theirs])


async def test_bad_credentials_and_missing_bucket_fail_check(
    s3_server: SeaweedS3, s3_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = open_blob_store(s3_server.url().replace(f"s3://{s3_server.bucket}/", "s3://no-such-bucket/"))
    with pytest.raises(BackendUnavailable, match="bucket does not exist"):
        await missing.check()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    wrong = open_blob_store(s3_server.url())
    with pytest.raises(BackendUnavailable, match="credentials"):
        await wrong.check()
    with pytest.raises(BackendUnavailable, match="credentials"):
        await wrong.put("file_x", _chunks(b"x"))


async def test_server_down_then_back(s3_server: SeaweedS3, s3_store: S3BlobStore) -> None:
    await s3_store.put("file_kept", _chunks(b"kept across the outage"))
    with s3_server.stopped():
        calls = {
            "check": lambda: s3_store.check(),
            "put": lambda: s3_store.put("file_during", _chunks(b"x" * 100)),
            "put_large": lambda: s3_store.put("file_during", generated(20 * MiB)),
            "open": lambda: s3_store.open("file_kept"),
            "exists": lambda: s3_store.exists("file_kept"),
            "delete": lambda: s3_store.delete("file_kept"),
            "iter_keys": lambda: anext(s3_store.iter_keys()),
            "sweep": lambda: s3_store.sweep_incomplete(0),
        }

        async def gives_up(name: str, call: Callable[[], Awaitable[object]]) -> None:
            started = time.monotonic()
            with pytest.raises(BackendUnavailable) as caught:
                await asyncio.wait_for(call(), 30)
            took = time.monotonic() - started
            assert took < 15, f"{name} took {took:.1f}s to give up"
            message = caught.value.message
            assert message.startswith("The server's file storage (S3) cannot be reached"), (name, message)

        await asyncio.gather(*(gives_up(name, call) for name, call in calls.items()))
    await s3_store.check()
    assert await _read(s3_store, "file_kept") == b"kept across the outage"
    await s3_store.put("file_after", _chunks(b"after"))
    assert await _read(s3_store, "file_after") == b"after"
    with pytest.raises(BlobNotFound):
        await s3_store.open("file_during")


async def test_server_crash_mid_download(s3_server: SeaweedS3, s3_store: S3BlobStore) -> None:
    await s3_store.put("file_long", generated(32 * MiB))
    stream = await s3_store.open("file_long")
    await anext(stream)
    s3_server.kill()
    try:
        with pytest.raises(BackendUnavailable):
            async for _ in stream:
                pass
    finally:
        s3_server.start()
    received = 0
    async for chunk in await s3_store.open("file_long"):
        received += len(chunk)
    assert received == 32 * MiB
