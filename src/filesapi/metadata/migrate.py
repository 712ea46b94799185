"""Schema migrations with Alembic, run on the store's own async engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from filesapi.metadata.base import SchemaOutOfDate

__all__ = ["current_revision", "ensure_schema", "head_revision", "upgrade"]

_SCRIPTS = Path(__file__).with_name("migrations")


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _is_empty(connection: Connection) -> bool:
    return not inspect(connection).get_table_names()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Replicas started together queue here; each then upgrades from what it finds.
            await conn.execute(text("SELECT pg_advisory_xact_lock(7263550118)"))
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), revision))


async def ensure_schema(engine: AsyncEngine, *, auto_upgrade: bool) -> None:
    """Create the schema in an empty database; otherwise require it to be at head (or upgrade)."""
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
        empty = await conn.run_sync(_is_empty)
    head = head_revision()
    if current == head:
        return
    if empty or auto_upgrade:
        await upgrade(engine)
        return
    raise SchemaOutOfDate(
        f"the metadata database is at schema revision {current or 'none'}, this filesapi needs {head}: "
        "run `filesapi db upgrade` first (or start with --upgrade-db)"
    )
