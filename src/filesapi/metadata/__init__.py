"""Metadata stores: file rows, workspaces, keys. Chosen by URL (``sqlite:///path``, ``memory://``)."""

from __future__ import annotations

from filesapi.metadata.base import MetadataStore, SchemaOutOfDate
from filesapi.metadata.sql import SqlMetadataStore

__all__ = ["MetadataStore", "SchemaOutOfDate", "SqlMetadataStore", "open_metadata_store"]


async def open_metadata_store(url: str, *, upgrade: bool = False) -> MetadataStore:
    return await SqlMetadataStore.open(url, upgrade=upgrade)
