"""A small synchronous Files API client for the CLI: streams both ways with progress callbacks and
works against filesapi and the hosted service alike.

It speaks the GA dialect and falls back to beta paging (``after_id``) when a server answers a list
in the beta shape. Errors come back as ``ApiError`` with the envelope's type and message.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

__all__ = ["ApiError", "ConnectionFailed", "FilesClient"]

Progress = Callable[[int], None]
_CHUNK = 1 << 20
_GA_VERSION = "2026-10-21"


class ApiError(Exception):
    """The server answered with an error envelope (or something that is not one)."""

    def __init__(self, status: int, error_type: str, message: str, request_id: str | None) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message
        self.request_id = request_id


class ConnectionFailed(Exception):
    """The server could not be reached."""


@dataclass
class FilesClient:
    base_url: str
    api_key: str
    timeout: float = 600.0

    def __post_init__(self) -> None:
        self._http = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            headers={
                "x-api-key": self.api_key,
                "anthropic-version": _GA_VERSION,
                "user-agent": "filesapi-cli",
            },
            timeout=httpx.Timeout(self.timeout, connect=10.0),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FilesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing
    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            if stream:
                response.read()
            raise _api_error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(self._http.build_request(method, path, **kwargs)).json()

    # -- calls
    def upload(
        self, path: Path, *, expires_in_seconds: int | None = None, progress: Progress | None = None
    ) -> Any:
        """Stream the file as multipart/form-data (with a Content-Length, no temp copy)."""
        boundary = secrets.token_hex(16)
        name = path.name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        head = b""
        if expires_in_seconds is not None:
            head += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="expires_in_seconds"\r\n\r\n'
                f"{expires_in_seconds}\r\n"
            ).encode()
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = path.stat().st_size

        def body() -> Iterator[bytes]:
            yield head
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    if progress:
                        progress(len(chunk))
                    yield chunk
            yield tail

        request = self._http.build_request(
            "POST",
            "/v1/files",
            content=body(),
            headers={
                "content-type": f"multipart/form-data; boundary={boundary}",
                "content-length": str(len(head) + size + len(tail)),
            },
        )
        return self._send(request).json()

    def list(self, *, limit: int = 20, everything: bool = False) -> Iterator[dict[str, Any]]:
        """Newest first; one page unless ``everything``."""
        params: dict[str, Any] = {"limit": limit}
        while True:
            page = self._json("GET", "/v1/files", params=params)
            yield from page["data"]
            if not everything:
                return
            if page.get("next_page"):
                params = {"limit": limit, "page": page["next_page"]}
            elif page.get("has_more") and page.get("last_id"):
                params = {"limit": limit, "after_id": page["last_id"]}
            else:
                return

    def stat(self, file_id: str) -> Any:
        return self._json("GET", f"/v1/files/{file_id}")

    def delete(self, file_id: str) -> Any:
        return self._json("DELETE", f"/v1/files/{file_id}")

    def download(
        self,
        file_id: str,
        out: BinaryIO,
        *,
        on_start: Callable[[int | None], None] | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Stream the content into ``out``; returns the byte count."""
        request = self._http.build_request(
            "GET", f"/v1/files/{file_id}/content", headers={"accept": "application/binary"}
        )
        response = self._send(request, stream=True)
        if response.is_redirect and "location" in response.headers:
            # A server that sends downloads to its bucket (download_redirect): the presigned URL
            # carries its own authorization, so none of our headers (the API key) go along.
            location = response.headers["location"]
            response.close()
            response = self._send(httpx.Request("GET", location), stream=True)
        written = 0
        try:
            length = response.headers.get("content-length")
            if on_start:
                on_start(int(length) if length and length.isdigit() else None)
            for chunk in response.iter_bytes(_CHUNK):
                out.write(chunk)
                written += len(chunk)
                if progress:
                    progress(len(chunk))
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"download of {file_id} broke off after {written} bytes: {exc}") from exc
        finally:
            response.close()
        return written

    # -- the admin endpoints (the admin key, or any key under --auth open)
    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """``/v1/admin/...``: fault rules, the clock, the request journal."""
        return self._json(method, "/v1/admin/" + path, **kwargs)


def _api_error(response: httpx.Response) -> ApiError:
    request_id = response.headers.get("request-id")
    try:
        error = response.json()["error"]
        return ApiError(response.status_code, str(error["type"]), str(error["message"]), request_id)
    except (json.JSONDecodeError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason_phrase
        return ApiError(response.status_code, "http_error", text, request_id)


def default_base_url() -> str:
    return os.environ.get("ANTHROPIC_BASE_URL") or "http://127.0.0.1:8000"
