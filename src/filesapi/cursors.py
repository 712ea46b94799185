"""Opaque GA page cursors (``page_...``): encrypted and authenticated, bound to one workspace.

A cursor is AES-GCM over the last file id of the page, with the workspace id as associated data:
it cannot be read (the id inside stays private), forged or replayed in another workspace. The key
comes from a server secret kept in the metadata database, so every replica accepts every cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from filesapi.errors import InvalidRequest
from filesapi.ids import RandomPool, is_file_id

__all__ = ["CURSOR_PREFIX", "CursorCodec"]

CURSOR_PREFIX = "page_"
_VERSION = b"\x01"
_NONCE = 12
_MAX_TOKEN = 512


class CursorCodec:
    def __init__(self, secret: str) -> None:
        key = hashlib.sha256(b"filesapi page cursor v1\x00" + secret.encode()).digest()
        self._aead = AESGCM(key)
        self._nonces = RandomPool()  # a random 96-bit nonce per cursor, never one twice

    def seal(self, workspace_id: str, last_id: str) -> str:
        nonce = self._nonces.take(_NONCE)
        sealed = self._aead.encrypt(nonce, _VERSION + last_id.encode("ascii"), workspace_id.encode())
        return CURSOR_PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")

    def open(self, workspace_id: str, token: str) -> str:
        """The file id a cursor points after, or ``InvalidRequest`` for anything not sealed by this
        server for this workspace."""
        invalid = InvalidRequest(
            "Invalid page cursor: pass back the next_page value of a previous list call."
        )
        if not token.startswith(CURSOR_PREFIX) or len(token) > _MAX_TOKEN:
            raise invalid
        body = token[len(CURSOR_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], workspace_id.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise invalid from None
        last_id = plain[1:].decode("ascii", "replace")
        if plain[:1] != _VERSION or not is_file_id(last_id):
            raise invalid
        return last_id
