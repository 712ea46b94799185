"""Opening the server's own storage from a command (``serve`` and the admin commands):
``run_blocking`` runs a coroutine to its end, ``with_service`` and ``with_metadata`` hand an action the
whole ``FileService`` or just the ``MetadataStore``, ``prepare_schema`` creates or checks the schema."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from filesapi.config import Settings
from filesapi.metadata import MetadataStore, open_metadata_store
from filesapi.service import FileService

_T = TypeVar("_T")


def run_blocking(coro: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coro)


async def with_service(settings: Settings, action: Callable[[FileService], Coroutine[Any, Any, _T]]) -> _T:
    from filesapi.app import open_state

    async with open_state(settings) as state:
        return await action(state.service)


async def with_metadata(settings: Settings, action: Callable[[MetadataStore], Coroutine[Any, Any, _T]]) -> _T:
    store = await open_metadata_store(settings.metadata_url)
    try:
        return await action(store)
    finally:
        await store.close()


async def prepare_schema(settings: Settings, *, upgrade: bool) -> None:
    """Open the metadata store once: creates a new schema, refuses (or with ``upgrade`` migrates)
    an out-of-date one."""
    store = await open_metadata_store(settings.metadata_url, upgrade=upgrade)
    await store.close()
