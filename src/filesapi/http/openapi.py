"""The server's OpenAPI 3.1 document (served at /openapi.json) and a plain HTML page for it (/docs).

Both dialects share the paths: the beta dialect (``anthropic-beta: files-api-2025-04-14``) and GA
differ in list parameters and shapes, which the document states with ``anyOf``.
"""

from __future__ import annotations

import copy
import html
from typing import Any

from filesapi import __version__
from filesapi.service import MAX_EXPIRES_IN_SECONDS, MAX_IDS, MAX_PAGE_SIZE, MIN_EXPIRES_IN_SECONDS

__all__ = ["docs_page", "openapi_document"]

_ID = {"type": "string", "description": "A file id, e.g. file_011CNha8iCJcU1wXNR6q4V8w."}
_TIME = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


_COMMON_ERRORS = {
    "400": _error("Invalid request (bad parameter, header or body)."),
    "401": _error("Missing or unknown API key."),
    "403": _error("The key cannot act on the workspace asked for."),
    "408": _error("The request body stalled (--body-timeout)."),
    "429": _error("Over the key's rate limit (--rate-limit); retry after retry-after."),
    "431": _error("The request headers are too large."),
    "503": _error("A backend is unavailable; retry after the retry-after header."),
    "529": _error("Overloaded (--max-concurrent-requests); retry after retry-after."),
}
_FILE_ID_PATTERN = "^file_01[1-9A-HJ-NP-Za-km-z]{22}$"
_TEXT = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^\\x00-\\x1f\\x7f]+$"}
_REQUEST_ID = {
    "required": True,
    "description": "Every response, errors included, names its request.",
    "schema": {"type": "string", "pattern": "^req_01[1-9A-HJ-NP-Za-km-z]{22}$"},
}

_HEADERS: list[dict[str, Any]] = [
    {
        "name": "anthropic-version",
        "in": "header",
        "required": True,
        "schema": {
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "examples": ["2023-06-01", "2026-10-21"],
        },
        "description": "API version; any YYYY-MM-DD is accepted, a missing one is 400.",
    },
    {
        "name": "anthropic-beta",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "examples": ["files-api-2025-04-14"]},
        "description": "Selects the beta dialect when one of its comma-separated values is "
        "files-api-2025-04-14; other values are ignored.",
    },
    {
        "name": "anthropic-workspace-id",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "When sent, must name the key's workspace (id or name).",
    },
]

_FILE_ID_PARAM = {"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _schemas() -> dict[str, Any]:
    file_metadata = {
        "type": "object",
        "required": ["id", "type", "filename", "mime_type", "size_bytes", "created_at", "downloadable"],
        "properties": {
            "id": _ID,
            "type": {"const": "file"},
            "filename": {"type": "string", "minLength": 1, "maxLength": 500},
            "mime_type": {"type": "string", "minLength": 1},
            "size_bytes": {"type": "integer", "minimum": 0},
            "created_at": _TIME,
            "downloadable": {"type": "boolean"},
            "scope": {"oneOf": [{"type": "null"}, _ref("FileScope")]},
            "expires_at": {"oneOf": [{"type": "null"}, _TIME], "description": "GA dialect only."},
        },
    }
    return {
        "FileScope": {
            "type": "object",
            "required": ["type", "id"],
            "properties": {"type": {"const": "session"}, "id": {"type": "string"}},
        },
        "FileMetadata": file_metadata,
        "BetaFileList": {
            "type": "object",
            "required": ["data", "first_id", "last_id", "has_more"],
            "properties": {
                "data": {"type": "array", "items": _ref("FileMetadata")},
                "first_id": {"type": ["string", "null"]},
                "last_id": {"type": ["string", "null"]},
                "has_more": {"type": "boolean"},
                "next_page": {"type": ["string", "null"]},
            },
        },
        "GaFileList": {
            "type": "object",
            "required": ["data", "next_page"],
            "properties": {
                "data": {"type": "array", "items": _ref("FileMetadata")},
                "next_page": {"type": ["string", "null"], "description": "Opaque cursor, starts with page_."},
            },
        },
        "DeletedFile": {
            "type": "object",
            "required": ["id", "type"],
            "properties": {"id": _ID, "type": {"const": "file_deleted"}},
        },
        "Error": {
            "type": "object",
            "required": ["type", "error", "request_id"],
            "properties": {
                "type": {"const": "error"},
                "request_id": {"type": "string"},
                "error": {
                    "type": "object",
                    "required": ["type", "message"],
                    "properties": {
                        "type": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {
                            "type": "object",
                            "properties": {"error_code": {"type": "string"}},
                        },
                    },
                },
            },
        },
    }


def _upload_body(*, admin: bool = False) -> dict[str, Any]:
    expires: dict[str, Any] = {"type": "integer", "maximum": MAX_EXPIRES_IN_SECONDS}
    expires["minimum"] = 1 if admin else MIN_EXPIRES_IN_SECONDS
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "expires_in_seconds": expires,
                    },
                }
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    file_response = {
        "description": "The file.",
        "content": {"application/json": {"schema": _ref("FileMetadata")}},
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "filesapi: the Anthropic Files API",
            "version": __version__,
            "description": "Both wire dialects on the same paths: beta "
            "(anthropic-beta: files-api-2025-04-14) "
            "and GA. Every error is the Anthropic error envelope.",
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": _schemas(),
        },
        "paths": {
            "/v1/files": {
                "post": {
                    "operationId": "uploadFile",
                    "summary": "Upload a file",
                    "parameters": _HEADERS,
                    "requestBody": _upload_body(),
                    "responses": {
                        "200": file_response,
                        **_COMMON_ERRORS,
                        "413": _error("The file is over the size limit."),
                    },
                },
                "get": {
                    "operationId": "listFiles",
                    "summary": "List files, newest first",
                    "parameters": [
                        *_HEADERS,
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                        },
                        {
                            "name": "page",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "pattern": "^page_[A-Za-z0-9_-]+$",
                                "maxLength": 512,
                            },
                            "description": "A next_page cursor of this server (not with after_id/before_id).",
                        },
                        {
                            "name": "after_id",
                            "in": "query",
                            "schema": {"type": "string", "pattern": _FILE_ID_PATTERN},
                            "description": "Beta only (GA: 400): the page of files older than this one.",
                        },
                        {
                            "name": "before_id",
                            "in": "query",
                            "schema": {"type": "string", "pattern": _FILE_ID_PATTERN},
                            "description": "Beta only (GA: 400): the page of files newer than this one.",
                        },
                        {
                            "name": "scope_id",
                            "in": "query",
                            "schema": _TEXT,
                            "description": "Only files of this session scope.",
                        },
                        {
                            "name": "ids[]",
                            "in": "query",
                            "style": "form",
                            "explode": True,
                            "schema": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_IDS},
                            "description": "GA only: just these files, at most 100 distinct ids (not with "
                            "page or limit); the beta dialect ignores it.",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "One page (beta or GA shape).",
                            "content": {
                                "application/json": {
                                    "schema": {"anyOf": [_ref("BetaFileList"), _ref("GaFileList")]}
                                }
                            },
                        },
                        **_COMMON_ERRORS,
                    },
                },
            },
            "/v1/files/{file_id}": {
                "get": {
                    "operationId": "getFileMetadata",
                    "summary": "A file's metadata",
                    "parameters": [_FILE_ID_PARAM, *_HEADERS],
                    "responses": {"200": file_response, **_COMMON_ERRORS, "404": _error("No such file.")},
                },
                "delete": {
                    "operationId": "deleteFile",
                    "summary": "Delete a file",
                    "parameters": [_FILE_ID_PARAM, *_HEADERS],
                    "responses": {
                        "200": {
                            "description": "Deleted.",
                            "content": {"application/json": {"schema": _ref("DeletedFile")}},
                        },
                        **_COMMON_ERRORS,
                        "404": _error("No such file."),
                    },
                },
            },
            "/v1/files/{file_id}/content": {
                "get": {
                    "operationId": "downloadFile",
                    "summary": "A file's content (single Range requests supported)",
                    "parameters": [_FILE_ID_PARAM, *_HEADERS],
                    "responses": {
                        "200": {
                            "description": "The bytes, with the file's Content-Type.",
                            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        "206": {
                            "description": "The range asked for.",
                            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        "304": {"description": "Not modified (If-None-Match)."},
                        "307": {
                            "description": "Only on S3 with download_redirect: fetch the whole file from "
                            "the presigned URL in Location (not for Range, HEAD or browsers)."
                        },
                        **_COMMON_ERRORS,
                        "404": _error("No such file, or it expired (details.error_code file_expired)."),
                        "416": _error("The range lies outside the file."),
                        "500": _error("The stored content is corrupt (x-should-retry: false)."),
                    },
                },
            },
            "/v1/admin/files": {
                "post": {
                    "operationId": "adminCreateFile",
                    "summary": "Create a file as a tool would (filesapi only)",
                    "parameters": [
                        *_HEADERS,
                        {"name": "workspace", "in": "query", "schema": _TEXT},
                        {"name": "scope_id", "in": "query", "schema": _TEXT},
                        {"name": "downloadable", "in": "query", "schema": {"type": "boolean"}},
                        {
                            "name": "expires_in_seconds",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_EXPIRES_IN_SECONDS},
                        },
                    ],
                    "requestBody": _upload_body(admin=True),
                    "responses": {
                        "200": file_response,
                        **_COMMON_ERRORS,
                        "413": _error("Over the size limit."),
                    },
                },
            },
            "/v1/admin/requests": {
                "get": {
                    "operationId": "adminListRequests",
                    "summary": "The request journal, newest first (filesapi only)",
                    "parameters": [
                        *_HEADERS,
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                        *(
                            {"name": name, "in": "query", "schema": _TEXT}
                            for name in ("before", "operation", "method", "workspace", "request_id", "since")
                        ),
                        {"name": "status", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {"200": {"description": "Journal entries."}, **_COMMON_ERRORS},
                },
                "delete": {
                    "operationId": "adminClearRequests",
                    "summary": "Empty the request journal (filesapi only)",
                    "parameters": [*_HEADERS],
                    "responses": {"200": {"description": "Cleared."}, **_COMMON_ERRORS},
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Alive",
                    "security": [],
                    "responses": {"200": {"description": "The process answers."}},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Backends reachable",
                    "security": [],
                    "responses": {
                        "200": {"description": "Ready."},
                        "503": {"description": "A backend is unavailable."},
                    },
                }
            },
        },
    }
    return _finish(copy.deepcopy(document))


def _finish(document: dict[str, Any]) -> dict[str, Any]:
    """What holds for every operation: optional query values may be empty (an empty value counts
    as not given), every response carries ``request-id``, objects have exactly their fields."""
    for operations in document["paths"].values():
        for op in operations.values():
            for param in op.get("parameters", []):
                if param["in"] == "query" and not param.get("required"):
                    param["allowEmptyValue"] = True
            for response in op["responses"].values():
                response.setdefault("headers", {})["request-id"] = _REQUEST_ID
    for schema in document["components"]["schemas"].values():
        if schema.get("type") == "object" and "properties" in schema:
            schema["additionalProperties"] = False
    return document


def docs_page(document: dict[str, Any]) -> str:
    """A dependency-free HTML rendering of the document: every operation with its parameters."""
    esc = html.escape
    rows = []
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            params = "".join(
                f"<li><code>{esc(p['name'])}</code> <small>({esc(p['in'])}"
                f"{', required' if p.get('required') else ''})</small> {esc(p.get('description', ''))}</li>"
                for p in op.get("parameters", [])
            )
            statuses = ", ".join(
                f"<code>{esc(code)}</code> {esc(r['description'])}" for code, r in op["responses"].items()
            )
            rows.append(
                f"<section><h2><span class=m>{method.upper()}</span> <code>{esc(path)}</code></h2>"
                f"<p>{esc(op.get('summary', ''))}</p><ul>{params}</ul><p class=r>{statuses}</p></section>"
            )
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>filesapi API</title><style>"
        "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "section{border-top:1px solid #ddd;padding:.5rem 0}.m{background:#225;color:#fff;padding:0 .4rem;"
        "border-radius:3px;font-size:.8em}.r{color:#555;font-size:.9em}"
        "code{background:#f4f4f4;padding:0 .2rem}"
        f"</style></head><body><h1>{esc(document['info']['title'])}</h1>"
        f"<p>{esc(document['info']['description'])}"
        " The machine-readable document is at <a href='/openapi.json'>/openapi.json</a>.</p>"
        + "".join(rows)
        + "</body></html>"
    )
