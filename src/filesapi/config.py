"""One Settings object for the server, filled from CLI flags or ``FILESAPI_*`` environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

__all__ = [
    "DEFAULT_INLINE_MAX_SIZE",
    "ENV_PREFIX",
    "METRICS_DIR_ENV",
    "Settings",
    "available_cores",
    "format_size",
    "parse_size",
]

ENV_PREFIX = "FILESAPI_"
# prometheus-client's multiprocess mode: where every worker of a server keeps its metric values.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_INLINE_MAX_SIZE = 64 * 1024
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(text: str) -> int:
    """``500MB`` -> 500_000_000, ``2GiB`` -> 2_147_483_648, ``1024`` -> 1024."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 1048576, 500MB, 2GiB)")
    number, unit = match.group(1), (match.group(2) or "").lower()
    binary = "i" in unit
    base = unit[:1] if unit not in ("", "b") else unit
    factor = 1024 ** "bkmgt".index(base) if binary and base else _UNITS[base]
    return int(float(number) * factor)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), for ``--workers auto``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def format_size(value: int) -> str:
    for unit, factor in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if value >= factor and value % factor == 0:
            return f"{value // factor}{unit}"
    return f"{value}B"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".filesapi")
    memory: bool = False
    auth: str = "open"
    max_file_size: int = 500_000_000
    workspace_quota: int | None = None
    profile: str = "default"
    admin_key: str | None = None
    database_url: str | None = None
    blob_url: str | None = None
    upgrade_db: bool = False
    workers: int = 1
    log_level: str = "info"
    log_format: str = "auto"
    console: bool = True
    sweep_interval: float = 60.0
    verify_downloads: bool = True
    max_concurrent_requests: int = 512
    rate_limit: int = 0
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    inline_max_size: int | None = None
    max_concurrent_per_key: int | None = None
    min_upload_rate: int = 1000
    upload_deadline: float = 0.0
    send_timeout: float = 60.0
    allowed_hosts: str = ""
    upstream: str | None = None
    upstream_key: str | None = field(default=None, repr=False)
    upstream_max_request: int = 32_000_000
    upstream_timeout: float = 600.0
    test_controls: bool = False

    def __post_init__(self) -> None:
        if self.auth not in ("open", "keys"):
            raise ValueError(f"auth must be open or keys, not {self.auth!r}")
        if self.profile not in ("default", "hosted"):
            raise ValueError(f"profile must be default or hosted, not {self.profile!r}")
        if self.upstream not in (None, "mock") and not re.match(r"https?://", self.upstream or ""):
            raise ValueError(f"--upstream must be an http(s):// URL or mock, not {str(self.upstream)[:80]!r}")
        if self.memory and self.workers != 1:
            raise ValueError("--memory keeps everything in one process: use --workers 1")

    @property
    def metadata_url(self) -> str:
        if self.memory:
            return "memory://"
        return self.database_url or f"sqlite:///{(self.data_dir / 'metadata.db').resolve()}"

    @property
    def blobs_url(self) -> str:
        if self.memory:
            return "memory://"
        return self.blob_url or (self.data_dir / "blobs").resolve().as_uri()

    @property
    def effective_inline_max_size(self) -> int:
        """Files up to this size go into the metadata database with their row. Default: 64 KiB on
        SQLite (a small upload then costs one shared WAL fsync instead of three of its own), off
        on PostgreSQL (where the object store is meant to hold every byte)."""
        if self.inline_max_size is not None:
            return self.inline_max_size
        return DEFAULT_INLINE_MAX_SIZE if self.metadata_url.startswith(("sqlite:", "memory:")) else 0

    @property
    def effective_allowed_hosts(self) -> frozenset[str] | None:
        """The Host names answered: any under ``--auth keys`` (a key is needed anyway) or with
        ``--allowed-hosts '*'``; else the loopback names plus those ``--allowed-hosts`` lists."""
        extra = {h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()}
        if self.auth == "keys" or "*" in extra:
            return None
        return frozenset({"127.0.0.1", "localhost", "[::1]", *extra})

    @property
    def effective_quota(self) -> int | None:
        """``--profile hosted`` defaults to the hosted service's 100 GB when no quota is given."""
        if self.workspace_quota is not None:
            return self.workspace_quota or None  # 0 means unlimited
        return 100 * 1000**3 if self.profile == "hosted" else None

    def to_env(self) -> dict[str, str]:
        """The environment that recreates these settings in a worker process."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            env[ENV_PREFIX + f.name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        settings = cls()
        changes: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            default = getattr(settings, f.name)
            if f.name in (
                "max_file_size",
                "workspace_quota",
                "inline_max_size",
                "min_upload_rate",
                "upstream_max_request",
            ):
                changes[f.name] = parse_size(raw)
            elif f.name == "workers" and raw.strip().lower() == "auto":
                changes[f.name] = "auto"  # resolved below, once --memory is known
            elif f.name == "max_concurrent_per_key":
                changes[f.name] = int(raw)
            elif isinstance(default, bool):
                changes[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                changes[f.name] = int(raw)
            elif isinstance(default, float):
                changes[f.name] = float(raw)
            elif isinstance(default, Path):
                changes[f.name] = Path(raw)
            else:
                changes[f.name] = raw
        if changes.get("workers") == "auto":
            changes["workers"] = 1 if changes.get("memory") else min(64, available_cores())
        return replace(settings, **changes)  # type: ignore[arg-type]
