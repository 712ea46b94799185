"""``--upstream mock``: a deterministic Messages reply made here, without any network, for CI.

The reply's text lists every file the gateway resolved (filename, media type, size, sha256 of the
bytes read from the store), so a test can assert which files reached the model call. Documents that
ask for citations get one citation each (the gateway then puts their ``file_id`` on it, as for a
real upstream). ``count_tokens`` answers ``ceil((request bytes + resolved file bytes) / 4)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from filesapi.errors import InvalidRequest
from filesapi.gateway.resolve import Resolution, ResolvedFile
from filesapi.gateway.sse import encode_event
from filesapi.service import FileService

__all__ = ["MOCK_MODEL_NOTE", "mock_count_tokens", "mock_events", "mock_message"]

MOCK_MODEL_NOTE = "filesapi mock upstream: no model was called."


async def _sha256(service: FileService, resolved: ResolvedFile) -> str:
    if resolved.raw is not None:
        return hashlib.sha256(resolved.raw).hexdigest()
    digest = hashlib.sha256()
    async for chunk in await service.content(resolved.record):
        digest.update(chunk)
    return digest.hexdigest()


def _check(body: dict[str, Any], *, create: bool) -> None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model: Field required")
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("messages: Field required")
    if create and not isinstance(body.get("max_tokens"), int):
        raise InvalidRequest("max_tokens: Field required")


def mock_count_tokens(resolution: Resolution) -> dict[str, int]:
    _check(resolution.body, create=False)
    return {"input_tokens": -(-(len(resolution.raw) + resolution.resolved_bytes) // 4)}


def _citation(resolved: ResolvedFile) -> dict[str, Any] | None:
    block = resolved.ref.block
    citations = block.get("citations")
    if resolved.ref.document_index is None or not (isinstance(citations, dict) and citations.get("enabled")):
        return None
    title = block.get("title") if isinstance(block.get("title"), str) else None
    common = {"document_index": resolved.ref.document_index, "document_title": title, "file_id": None}
    if resolved.text is not None and resolved.raw is not None:
        cited = resolved.raw.decode("utf-8").removeprefix("\ufeff")[:40]
        return {"type": "char_location", "cited_text": cited, "start_char_index": 0,
                "end_char_index": len(cited), **common}  # fmt: skip
    return {"type": "page_location", "cited_text": "", "start_page_number": 1, "end_page_number": 2, **common}


async def _blocks(service: FileService, resolution: Resolution) -> list[dict[str, Any]]:
    lines = [MOCK_MODEL_NOTE, f"Files resolved: {len(resolution.files)}"]
    for n, resolved in enumerate(resolution.files, 1):
        record = resolved.record
        lines.append(
            f"{n}. {record.filename} ({resolved.media_type}, {record.size_bytes} bytes, "
            f"sha256 {await _sha256(service, resolved)}) from {record.id} in {resolved.ref.where}"
        )
    blocks: list[dict[str, Any]] = [{"type": "text", "text": "\n".join(lines)}]
    for resolved in resolution.files:
        citation = _citation(resolved)
        if citation is not None:
            text = f"Cited from {resolved.record.filename}."
            blocks.append({"type": "text", "text": text, "citations": [citation]})
    return blocks


async def mock_message(service: FileService, resolution: Resolution, request_id: str) -> dict[str, Any]:
    _check(resolution.body, create=True)
    blocks = await _blocks(service, resolution)
    text_length = sum(len(b["text"]) for b in blocks)
    return {
        "id": "msg_mock_" + hashlib.sha256(resolution.raw).hexdigest()[:24],
        "type": "message",
        "role": "assistant",
        "model": resolution.body["model"],
        "content": blocks,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": mock_count_tokens(resolution)["input_tokens"],
            "output_tokens": -(-text_length // 4),
        },
    }


def _event(kind: str, **fields: object) -> bytes:
    return encode_event(kind, {"type": kind, **fields})


async def mock_events(message: dict[str, Any]) -> AsyncIterator[bytes]:
    """The message as the hosted service streams one: text in line-sized deltas, citations as
    ``citations_delta`` events."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 0}}
    yield _event("message_start", message=start)
    for index, block in enumerate(message["content"]):
        empty = {"type": "text", "text": ""} | ({"citations": None} if "citations" in block else {})
        yield _event("content_block_start", index=index, content_block=empty)
        for citation in block.get("citations") or []:
            delta = {"type": "citations_delta", "citation": citation}
            yield _event("content_block_delta", index=index, delta=delta)
        for piece in block["text"].splitlines(keepends=True):
            yield _event("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
        yield _event("content_block_stop", index=index)
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    yield _event("message_delta", delta=delta, usage={"output_tokens": message["usage"]["output_tokens"]})
    yield _event("message_stop")


def dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
