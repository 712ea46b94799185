"""filesapi: a server for the Anthropic Files API that the official SDKs talk to unchanged."""

from __future__ import annotations

from filesapi.config import Settings
from filesapi.errors import FilesApiError
from filesapi.models import FilePage, FileRecord, Principal
from filesapi.service import FileService, Policy

__version__ = "0.1.0"

__all__ = [
    "FilePage",
    "FileRecord",
    "FileService",
    "FilesApiError",
    "Policy",
    "Principal",
    "Settings",
    "__version__",
]
