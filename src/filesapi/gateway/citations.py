"""Putting ``file_id`` back on citations of documents that came from files.

The upstream saw inlined sources, so its citations name documents by ``document_index`` only; the
hosted service, which read the file itself, would have said which file. Only the document-based
citation kinds carry a ``file_id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["attach_file_ids", "rewrite_event_data", "rewrite_json_body", "rewrite_message"]

_DOCUMENT_CITATIONS = frozenset({"char_location", "page_location", "content_block_location"})


def attach_file_ids(citation: Any, documents: Mapping[int, str]) -> bool:
    """Set ``file_id`` on one citation when its document came from a file. True when changed."""
    if not isinstance(citation, dict) or citation.get("type") not in _DOCUMENT_CITATIONS:
        return False
    index = citation.get("document_index")
    if not isinstance(index, int) or index not in documents or citation.get("file_id"):
        return False
    citation["file_id"] = documents[index]
    return True


def _block(block: Any, documents: Mapping[int, str]) -> bool:
    changed = False
    if isinstance(block, dict) and isinstance(block.get("citations"), list):
        for citation in block["citations"]:
            changed |= attach_file_ids(citation, documents)
    return changed


def rewrite_message(message: Any, documents: Mapping[int, str]) -> bool:
    """A Messages reply (``{"type": "message", "content": [...]}``), in place."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return False
    changed = False
    for block in message["content"]:
        changed |= _block(block, documents)
    return changed


def rewrite_event_data(data: Any, documents: Mapping[int, str]) -> bool:
    """One SSE event's data, in place: ``citations_delta`` deltas, and the citations a
    ``content_block_start`` or ``message_start`` may already carry."""
    if not isinstance(data, dict):
        return False
    kind = data.get("type")
    if kind == "content_block_delta":
        delta = data.get("delta")
        return isinstance(delta, dict) and attach_file_ids(delta.get("citation"), documents)
    if kind == "content_block_start":
        return _block(data.get("content_block"), documents)
    if kind == "message_start":
        return rewrite_message(data.get("message"), documents)
    return False


def rewrite_json_body(body: bytes, documents: Mapping[int, str]) -> bytes:
    """A JSON reply with its citations completed; the bytes unchanged when nothing needed it."""
    if not documents or b"citations" not in body:
        return body
    try:
        message = json.loads(body)
    except ValueError:
        return body
    if not rewrite_message(message, documents):
        return body
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
