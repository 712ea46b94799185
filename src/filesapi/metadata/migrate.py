"""Schema migrations with Alembic, run on a store's connection inside one transaction."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

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


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    if connection.dialect.name == "postgresql":
        # Replicas started together queue here; each then upgrades from what it finds.
        connection.execute(text("SELECT pg_advisory_xact_lock(7263550118)"))
    command.upgrade(_config(connection), revision)


def ensure_schema(connection: Connection, *, auto_upgrade: bool) -> None:
    """Create the schema in an empty database; otherwise require it to be at head (or upgrade)."""
    current = current_revision(connection)
    head = head_revision()
    if current == head:
        return
    if auto_upgrade or not inspect(connection).get_table_names():
        upgrade(connection)
        return
    raise SchemaOutOfDate(
        f"the metadata database is at schema revision {current or 'none'}, this filesapi needs {head}: "
        "run `filesapi db upgrade` first (or start with --upgrade-db)"
    )
