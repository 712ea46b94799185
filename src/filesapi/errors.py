"""The domain error tree. Nothing here knows HTTP: ``filesapi.http.envelope`` maps each class to a
status code and an Anthropic error type in one table."""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "BackendUnavailable",
    "CorruptBlob",
    "FileExpired",
    "FileNotDownloadable",
    "FileTooLarge",
    "FilesApiError",
    "InvalidRequest",
    "NotFound",
    "PermissionDenied",
    "QuotaExceeded",
    "RequestTimeout",
]


class FilesApiError(Exception):
    """Base of every error the service raises on purpose. ``message`` is safe to show a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(FilesApiError):
    """A parameter, header or body the client must fix."""


class FileNotDownloadable(FilesApiError):
    def __init__(self, file_id: str) -> None:
        super().__init__(f"File {file_id} is not downloadable.")


class QuotaExceeded(FilesApiError):
    pass


class AuthenticationFailed(FilesApiError):
    pass


class PermissionDenied(FilesApiError):
    pass


class NotFound(FilesApiError):
    pass


class FileExpired(FilesApiError):
    def __init__(self, file_id: str) -> None:
        super().__init__(f"File {file_id} has expired and its content is no longer available.")


class FileTooLarge(FilesApiError):
    pass


class RequestTimeout(FilesApiError):
    """The client sent its request too slowly."""


class BackendUnavailable(FilesApiError):
    """A metadata or blob backend cannot be reached right now; the client should retry."""


class CorruptBlob(FilesApiError):
    """Stored bytes no longer match their checksum; retrying will not help."""
