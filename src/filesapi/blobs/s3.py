"""Blobs as objects in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, R2, ...), through obstore.

URL: ``s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:8333&region=us-east-1&read_timeout=60``.
``endpoint``, ``region`` and ``read_timeout`` (seconds without a byte before a request counts as
stalled) are optional (else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, else AWS in us-east-1). ``download_redirect=SECONDS`` turns on redirected
downloads (see ``download_url``), with presigned URLs valid that long, for clients that reach the
bucket at ``public_endpoint`` (default: ``endpoint``). Credentials come from the usual places (the
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` variables first). With an
endpoint, requests are path-style (``endpoint/bucket/key``), and plain http is allowed only when the
endpoint says ``http://``. A blob lives at ``PREFIX/<key>``.

The write path: chunks stream from the request into a multipart upload (8 MiB parts, two in flight),
so an upload holds about (2 + 1) x 8 MiB however large the file (measured: a 19 MiB peak, Python
allocations and process RSS alike, for 64 MiB and 256 MiB uploads), and nothing touches local disk.
Part size and parallelism hardly moved throughput here (8 MiB x 2: 151 MiB/s, 8 x 4: 139, 16 x 2:
137, 5 x 4: 137, 5 x 2: 134, medians of 5, all within the noise), so the smaller footprint won.
The object appears only when the upload completes at the end (a blob smaller than a part goes as one
PUT at the end instead); if the stream fails or the task is cancelled, even inside a part's send,
the upload is aborted. What an abort could not remove (S3 down, process killed) is found by
``sweep_incomplete``, the one call made through aiobotocore, as obstore cannot list or abort
multipart uploads.

Integrity: the server's own checksum is CRC32C (``Checksum``), computed as the bytes pass, as every
store does. On top of that each request carries an ``x-amz-checksum-crc64nvme`` header that the S3
server verifies before accepting the data (SeaweedFS 4.48 answers 400 BadDigest to a wrong one and
stores a full-object CRC64NVME). ``bench/s3_blobs.py``: SeaweedFS on 127.0.0.1, 2 cores shared by
client, server and other work, 256 MiB streamed in 64 KiB chunks, three runs of 7-9 rotated rounds
(throughput swings +-30% from run to run on this machine; CPU seconds are the steadier figure)::

    checksum header   MiB/s, 3 runs      ratio to none        client CPU s   weed CPU s (per 256 MiB)
    none              142 / 162 / 101    1                    0.19           2.56-2.63
    CRC64NVME         105 / 171 / 109    0.74 / 1.06 / 1.08   0.18-0.20      2.55-2.70
    SHA256             92 / 152 /  88    0.65 / 0.94 / 0.87   0.33-0.35      2.69-2.79

(A first measurement on obstore's writer directly, 5 rounds: none 100, CRC64NVME 103, SHA256
83 MiB/s.) CRC64NVME costs no measurable CPU on either side, the upload being bound by the S3
server's CPU (about 10 CPU-seconds per GiB); SHA-256 nearly doubles the client's CPU and slows the
upload 6-35%. So CRC64NVME. Payloads are sent unsigned (``UNSIGNED-PAYLOAD``): signing would
SHA-256 every byte once more (75 vs 133 MiB/s in /work/shared/notes/s3-clients.md), and the
checksum header already covers the body.

Timeouts: obstore's ``timeout`` spans a whole request including its streamed body, so it is set
high and stalls are caught by ``read_timeout`` (no byte for that long) and ``connect_timeout``
instead. Failed requests are retried a few times with backoff (5xx, connection errors), so a dead
server surfaces as ``BackendUnavailable`` after a few seconds; ``check()`` uses its own client that
does not retry and answers within about two seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from filesapi.blobs.base import BlobNotFound, BlobStore, ByteRange, Checksum, Chunk, check_key
from filesapi.errors import BackendUnavailable
from filesapi.models import BlobInfo

if TYPE_CHECKING:
    from obstore import AsyncWritableFile, GetOptions
    from obstore.store import ClientConfig, RetryConfig, S3Config

__all__ = ["S3BlobStore", "S3Location"]

log = logging.getLogger("filesapi.blobs.s3")

_PART_SIZE = 8 << 20
_PARTS_IN_FLIGHT = 2
_WRITE_BATCH = 1 << 20  # one call into obstore per MiB, not per 64 KiB request chunk
_READ_CHUNK = 4 << 20  # fewer, larger hand-offs through Python (each costs a few tens of us)
_CHECKSUM_ALGORITHM = "CRC64NVME"
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")
_STATUS = re.compile(r"status code: (\d{3})")
_TIMED_OUT = re.compile(r"TimedOut|timed out|deadline has elapsed", re.IGNORECASE)
_UNREACHABLE = re.compile(r"connect|error sending request|dns error|Could not connect", re.IGNORECASE)

_CLIENT_OPTIONS: ClientConfig = {
    "connect_timeout": "5s",
    "read_timeout": "60s",
    "timeout": "24h",  # spans the whole body: a slow multi-GB download must not be cut off
}
_RETRY: RetryConfig = {
    "max_retries": 10,  # with jittered backoff: gives up after 2-5 s, riding out a quick restart
    "retry_timeout": timedelta(seconds=20),
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2)},
}
_CHECK_CLIENT_OPTIONS: ClientConfig = {"connect_timeout": "2s", "timeout": "5s"}
_CHECK_RETRY: RetryConfig = {"max_retries": 0}


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where blobs live: a bucket, a key prefix in it (no slashes around), and how to reach it."""

    bucket: str
    prefix: str
    endpoint: str | None
    region: str
    read_timeout: float = 60.0  # seconds without a byte before a request counts as stalled
    download_redirect: int = 0  # seconds a presigned download URL lives; 0: downloads are proxied
    public_endpoint: str | None = None  # where clients reach the bucket, when not at ``endpoint``

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] | None = None) -> S3Location:
        env = os.environ if environ is None else environ
        parts = urlsplit(url)
        if parts.scheme != "s3" or not _BUCKET.fullmatch(parts.netloc):
            raise ValueError(f"blob URL {url!r} is not s3://BUCKET/PREFIX")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region", "read_timeout", "download_redirect", "public_endpoint"}
        if unknown:
            raise ValueError(f"blob URL {url!r} has unknown parameters: {', '.join(sorted(unknown))}")
        endpoint = (
            query.get("endpoint") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
        )
        public_endpoint = query.get("public_endpoint") or None
        for name, value in (("endpoint", endpoint), ("public_endpoint", public_endpoint)):
            if value is not None and urlsplit(value).scheme not in ("http", "https"):
                raise ValueError(f"S3 {name} {value!r} must start with http:// or https://")
        region = query.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        prefix = unquote(parts.path).strip("/")
        if any(not segment or segment in (".", "..") for segment in prefix.split("/") if prefix):
            raise ValueError(f"blob URL {url!r} has an invalid prefix {prefix!r}")
        try:
            read_timeout = float(query.get("read_timeout", "60"))
        except ValueError:
            raise ValueError(f"blob URL {url!r}: read_timeout must be a number of seconds") from None
        redirect = query.get("download_redirect", "0")
        if not redirect.isdigit() or int(redirect) > 7 * 24 * 3600:  # SigV4's longest
            raise ValueError(f"blob URL {url!r}: download_redirect must be 0 to 604800 seconds")
        return cls(
            bucket=parts.netloc,
            prefix=prefix,
            endpoint=endpoint.rstrip("/") if endpoint else None,
            region=region,
            read_timeout=read_timeout,
            download_redirect=int(redirect),
            public_endpoint=public_endpoint.rstrip("/") if public_endpoint else None,
        )

    @property
    def key_prefix(self) -> str:
        """What every object key of this store starts with, in the bucket's own terms."""
        return f"{self.prefix}/" if self.prefix else ""


class S3BlobStore(BlobStore):
    def __init__(self, location: S3Location, *, checksum_algorithm: str | None = _CHECKSUM_ALGORITHM) -> None:
        """``checksum_algorithm``: the x-amz-checksum the S3 server verifies on each request
        (``CRC64NVME``, ``SHA256`` or None for none); the default is the measured best."""
        self.location = location
        self.checksum_algorithm = checksum_algorithm
        self._store = self._make_store(_CLIENT_OPTIONS, _RETRY)
        self._probe = self._make_store(_CHECK_CLIENT_OPTIONS, _CHECK_RETRY)
        self._presigner: Any = None

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        return cls(S3Location.from_url(url))

    def _make_store(self, options: ClientConfig, retry: RetryConfig) -> S3Store:
        loc = self.location
        client_options: ClientConfig = {**options}
        if "read_timeout" in client_options:
            client_options["read_timeout"] = f"{int(loc.read_timeout * 1000)}ms"
        if loc.endpoint is not None and loc.endpoint.startswith("http://"):
            client_options["allow_http"] = True
        # Credentials are left to obstore, which reads the AWS_* variables (and the other usual
        # sources); the settings we pass override anything the environment says about them.
        config: S3Config = {
            "region": loc.region,
            "virtual_hosted_style_request": loc.endpoint is None,
            "unsigned_payload": True,
            "disable_bulk_delete": True,  # one plain DELETE per blob works on every S3 look-alike
        }
        if loc.endpoint is not None:
            config["endpoint"] = loc.endpoint
        if self.checksum_algorithm is not None:
            config["checksum_algorithm"] = self.checksum_algorithm
        return S3Store(
            loc.bucket,
            prefix=loc.prefix or None,
            config=config,
            client_options=client_options,
            retry_config=retry,
        )

    # -- errors: everything obstore, aiobotocore or the network raise stops here

    def _unavailable(self, exc: BaseException, doing: str, text: str | None = None) -> BackendUnavailable:
        """A short message for the client; the backend's own (long) one goes to the log."""
        text = str(exc) if text is None else text
        status = _STATUS.search(text)
        if "NoSuchBucket" in text:
            reason = "its bucket does not exist"
        elif isinstance(exc, PermissionDeniedError | UnauthenticatedError) or (
            status is not None and status.group(1) in ("401", "403")
        ):
            reason = "refused this server's credentials"
        elif status is not None:
            reason = f"answered HTTP {status.group(1)}"
        elif _TIMED_OUT.search(text) or isinstance(exc, TimeoutError):
            reason = "did not answer in time"
        elif _UNREACHABLE.search(text):
            reason = "cannot be reached"
        else:
            reason = "failed"
        log.warning("S3 %s failed (%s): %s", doing, type(exc).__name__, text.splitlines()[0] if text else "")
        return BackendUnavailable(f"The server's file storage (S3) {reason}; try again later.")

    @contextmanager
    def _translate(self, doing: str, key: str | None = None) -> Iterator[None]:
        """Missing object -> ``BlobNotFound`` (when ``key`` names one); anything else the backend
        raises -> ``BackendUnavailable``."""
        try:
            yield
        except FileNotFoundError as exc:
            if key is None or "NoSuchBucket" in str(exc):
                raise self._unavailable(exc, doing) from exc
            raise BlobNotFound(key) from None
        except (ObstoreError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc, doing) from exc

    # -- the BlobStore interface

    async def put(self, key: str, chunks: AsyncIterable[Chunk]) -> BlobInfo:
        path = check_key(key)
        checksum = Checksum()
        writer = obstore.open_writer_async(
            self._store, path, buffer_size=_PART_SIZE, max_concurrency=_PARTS_IN_FLIGHT
        )
        try:
            batch: list[Chunk] = []
            batch_size = 0
            async for chunk in chunks:
                if not chunk:
                    continue
                checksum.update(chunk)
                batch.append(chunk)
                batch_size += len(chunk)
                if batch_size >= _WRITE_BATCH:
                    await self._write(writer, batch)
                    batch, batch_size = [], 0
            if batch:
                await self._write(writer, batch)
            with self._translate("upload"):
                await writer.close()  # completes the multipart upload: now the object exists
        except BaseException as exc:
            await self._abort(writer, exc, path)
            raise
        return checksum.info()

    async def _write(self, writer: AsyncWritableFile, batch: list[Chunk]) -> None:
        # obstore holds on to the buffer itself (no copy) until its part is sent: hand it an immutable
        # one (bytes() of a bytes object is that same object).
        with self._translate("upload"):
            await writer.write(bytes(batch[0]) if len(batch) == 1 else b"".join(batch))

    async def _abort(self, writer: AsyncWritableFile, exc: BaseException, path: str) -> None:
        """Abort the multipart upload (obstore does it when its writer exits with an error). Shielded:
        a second cancellation must not leave the upload half-aborted; the sweeper is the backstop."""

        async def abort() -> None:
            try:
                if await writer.closed():  # completing failed: nothing left to abort from here
                    log.info("S3 upload of %s failed at completion; sweep_incomplete removes leftovers", path)
                    return
                await writer.__aexit__(type(exc), exc, exc.__traceback__)
            except Exception as abort_exc:
                log.warning(
                    "could not abort the S3 upload of %s (sweep_incomplete will): %s",
                    path,
                    str(abort_exc).splitlines()[0] if str(abort_exc) else type(abort_exc).__name__,
                )

        try:
            await asyncio.shield(abort())
        except asyncio.CancelledError:
            if isinstance(exc, asyncio.CancelledError):
                return  # the abort goes on in the background; the original cancellation propagates
            raise

    async def open(self, key: str, byte_range: ByteRange | None = None) -> AsyncIterator[bytes]:
        path = check_key(key)
        options: GetOptions = {}
        if byte_range is not None:
            options["range"] = (byte_range.start, byte_range.end + 1)  # obstore's end is exclusive
        with self._translate("download", key):
            result = await obstore.get_async(self._store, path, options=options)
        return self._stream(result.stream(min_chunk_size=_READ_CHUNK))

    async def _stream(self, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        while True:
            with self._translate("download"):
                try:
                    chunk = await anext(stream)
                except StopAsyncIteration:
                    return
            yield chunk

    async def download_url(self, key: str, *, content_type: str, content_disposition: str) -> str | None:
        """With ``download_redirect``: a presigned GET of the object, at ``public_endpoint``, that
        makes S3 answer with this file's Content-Type and Content-Disposition. The client then
        fetches the bytes from the bucket itself instead of through this process, which measured
        0.6-0.7x of the bucket's own speed here (two copies through the kernel and Python on the
        same cores); what it gives up is the checksum check on the way out (scrub still checks)."""
        loc = self.location
        if not loc.download_redirect:
            return None
        if self._presigner is None:  # building a botocore client takes ~0.1 s: once, off the loop
            self._presigner = await asyncio.to_thread(self._make_presigner)
        params = {
            "Bucket": loc.bucket,
            "Key": loc.key_prefix + check_key(key),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": content_disposition,
        }
        with self._translate_boto("presign"):
            url: str = self._presigner.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=loc.download_redirect
            )
        return url

    def _make_presigner(self) -> Any:
        """A botocore client used only to sign URLs (no request ever goes through it)."""
        from botocore.config import Config  # type: ignore[import-untyped]
        from botocore.session import get_session  # type: ignore[import-untyped]

        loc = self.location
        endpoint = loc.public_endpoint or loc.endpoint
        config = Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint else "virtual"})
        return get_session().create_client("s3", region_name=loc.region, endpoint_url=endpoint, config=config)

    async def delete(self, key: str) -> None:
        path = check_key(key)
        with self._translate("delete"):
            await obstore.delete_async(self._store, path)  # S3 answers 204 for a missing key too

    async def exists(self, key: str) -> bool:
        path = check_key(key)
        try:
            with self._translate("head", key):
                await obstore.head_async(self._store, path)
        except BlobNotFound:
            return False
        return True

    async def iter_keys(self) -> AsyncIterator[str]:
        stream = obstore.list(self._store, chunk_size=1000)
        while True:
            with self._translate("list"):
                try:
                    batch = await anext(stream)
                except StopAsyncIteration:
                    return
            for meta in batch:
                try:
                    yield check_key(meta["path"])
                except ValueError:
                    continue  # not ours (a deeper "folder", a stray object): never hand it to delete

    async def check(self) -> None:
        # One cheap request that needs the bucket and valid credentials: list what sorts after
        # "~" under the prefix (nothing: keys are [A-Za-z0-9_]), without retries.
        with self._translate("check"):
            await obstore.list(self._probe, offset="~", chunk_size=1).collect_async()

    async def sweep_incomplete(self, older_than_seconds: float) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        removed = 0
        loc = self.location
        with self._translate_boto("sweep"):
            async with self._boto_client() as client:
                paginator = client.get_paginator("list_multipart_uploads")
                async for page in paginator.paginate(Bucket=loc.bucket, Prefix=loc.key_prefix):
                    for upload in page.get("Uploads", []):
                        if upload["Initiated"] >= cutoff:
                            continue
                        try:
                            await client.abort_multipart_upload(
                                Bucket=loc.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                            )
                        except client.exceptions.NoSuchUpload:
                            continue  # finished or aborted meanwhile
                        removed += 1
        return removed

    def _boto_client(self) -> Any:
        """An aiobotocore S3 client (imported here: only the sweeper needs it)."""
        from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
        from aiobotocore.session import get_session  # type: ignore[import-untyped]

        loc = self.location
        config = AioConfig(
            s3={"addressing_style": "path" if loc.endpoint else "virtual", "payload_signing_enabled": False},
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return get_session().create_client(
            "s3", region_name=loc.region, endpoint_url=loc.endpoint, config=config
        )

    @contextmanager
    def _translate_boto(self, doing: str) -> Iterator[None]:
        from aiohttp import ClientError as AiohttpError
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            text = f"{error.get('Code')}: status code: {status} {error.get('Message', '')}"
            raise self._unavailable(exc, doing, text) from exc
        except (BotoCoreError, AiohttpError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc, doing) from exc
