"""API keys and authentication.

``open`` mode (local use): any non-empty key works and acts on one shared workspace.
``keys`` mode: only keys made by ``filesapi keys create`` work. A key is ``sk-fapi-<key id>-<secret>``;
the database keeps only its SHA-256 (keys are 256-bit random, so a slow hash adds nothing), and the
comparison is constant-time. Unknown key ids cost the same work as wrong secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from filesapi.errors import AuthenticationFailed, PermissionDenied
from filesapi.ids import new_key_secret
from filesapi.metadata import MetadataStore
from filesapi.models import ApiKey, Principal, Workspace

__all__ = ["OPEN_WORKSPACE", "Authenticator", "CreatedKey", "create_key", "hash_key", "presented_key"]

OPEN_WORKSPACE = "default"
_KEY_SHAPE = re.compile(r"sk-fapi-([1-9A-HJ-NP-Za-km-z]{12})-[1-9A-HJ-NP-Za-km-z]{44}")
_DUMMY_HASH = hashlib.sha256(b"filesapi-no-such-key").hexdigest()


def presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key a request carries: ``x-api-key``, else the credential of ``Authorization: Bearer``
    (the scheme in any case). Authentication and the per-key limits both read it through here, so
    no spelling or extra header can count as another key."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    key: str
    record: ApiKey


async def create_key(metadata: MetadataStore, workspace_name: str, label: str | None = None) -> CreatedKey:
    workspace = await metadata.ensure_workspace(workspace_name)
    key_id, key = new_key_secret()
    record = ApiKey(
        key_id=key_id,
        workspace=workspace,
        key_hash=hash_key(key),
        created_at_us=time.time_ns() // 1000,
        label=label,
    )
    await metadata.add_key(record)
    return CreatedKey(key=key, record=record)


class Authenticator:
    def __init__(
        self,
        metadata: MetadataStore,
        mode: str,
        open_workspace: Workspace | None,
        admin_key: str | None = None,
    ) -> None:
        if mode not in ("open", "keys"):
            raise ValueError(f"unknown auth mode {mode!r}")
        if mode == "open" and open_workspace is None:
            raise ValueError("open mode needs its shared workspace")
        self._metadata = metadata
        self.mode = mode
        self._open_workspace = open_workspace
        self._admin_hash = hash_key(admin_key) if admin_key else None

    def is_admin_key(self, api_key: str | None) -> bool:
        return (
            bool(api_key)
            and self._admin_hash is not None
            and hmac.compare_digest(hash_key(api_key or ""), self._admin_hash)
        )

    async def authenticate(self, api_key: str | None, workspace_header: str | None) -> Principal:
        if not api_key:
            raise AuthenticationFailed(
                "No API key: send it in the x-api-key header or as Authorization: Bearer <key>."
            )
        is_admin = self.is_admin_key(api_key)
        if self.mode == "open":
            assert self._open_workspace is not None
            principal = Principal(workspace=self._open_workspace, key_id=None, is_admin=is_admin)
        else:
            principal = await self._by_key(api_key, is_admin)
        if workspace_header is not None and workspace_header.strip() not in (
            principal.workspace.id,
            principal.workspace.name,
        ):
            raise PermissionDenied(
                "The anthropic-workspace-id header names a workspace this API key cannot act on "
                f"(the key belongs to {principal.workspace.id})."
            )
        return principal

    async def _by_key(self, api_key: str, is_admin: bool) -> Principal:
        if is_admin:
            # The admin key is not stored in the database; it acts on the open workspace name.
            return Principal(
                workspace=await self._metadata.ensure_workspace(OPEN_WORKSPACE), key_id=None, is_admin=True
            )
        match = _KEY_SHAPE.fullmatch(api_key)
        record = await self._metadata.find_key(match.group(1)) if match else None
        stored = record.key_hash if record else _DUMMY_HASH
        valid = hmac.compare_digest(hash_key(api_key), stored)
        if record is None or not valid or record.revoked_at_us is not None:
            raise AuthenticationFailed("Invalid API key.")
        return Principal(workspace=record.workspace, key_id=record.key_id)
