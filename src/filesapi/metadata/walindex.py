"""Whether anything committed to a SQLite database since a moment ago, known without a statement.

A SQLite database in WAL mode keeps a shared-memory index beside it (the ``-shm`` file) that every
connection of every process maps. Its header (https://www.sqlite.org/walformat.html, "The WAL-Index
Header") changes with every commit by any connection: ``iChange`` counts transactions, ``mxFrame``
is the last frame committed, the salts change when the WAL restarts, and a checksum covers it all.
SQLite writes the header's two copies in order (the second, a barrier, then the first), and its
readers read them the other way round and retry if they differ; ``WalIndex.version`` reads them the
same way and gives the header's bytes, or None when the copies differ (a write under way) or the
index is not initialized.

Why not ``PRAGMA data_version``: every statement the sqlite3 module runs releases the GIL and takes
it back, and in a served worker (granian's threads, busy with other requests, take it meanwhile)
that round trip cost about 40 us per point read, several times the read itself (bench/README.md,
"The fourth pass"). Reading the mapped header costs two small copies, with the GIL held.

The mapping is safe only while a connection of this process holds the database open in WAL mode:
SQLite shrinks the ``-shm`` file only when the first connection opens it, and reading a shrunk
mapping past its end would end the process (SIGBUS). ``SqliteRunner`` opens the index after its
reader connection has read once (so the file exists and the reader holds it), and closes it before
that connection.
"""

from __future__ import annotations

import mmap
import os

__all__ = ["HEADER_BYTES", "WalIndex"]

HEADER_BYTES = 48  # one copy of the WAL-index header
_IS_INIT = 12  # the header's isInit byte: 1 once a connection has built the index


class WalIndex:
    """The WAL-index header of the database at ``db_path`` (its ``-shm`` file), mapped read-only."""

    def __init__(self, db_path: str) -> None:
        self.path = db_path + "-shm"
        self._map: mmap.mmap | None = None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if os.fstat(fd).st_size < 2 * HEADER_BYTES:
                raise OSError(f"{self.path} holds no WAL-index header yet")
            self._map = mmap.mmap(fd, 2 * HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)  # the mapping keeps the file

    def version(self) -> bytes | None:
        """The header's bytes: equal for two calls exactly when nothing committed in between
        (both copies read, first then second; None if they differ or the index is not built)."""
        mapped = self._map
        if mapped is None:
            return None
        first = mapped[:HEADER_BYTES]
        second = mapped[HEADER_BYTES : 2 * HEADER_BYTES]
        if first != second or first[_IS_INIT] != 1:
            return None
        return first

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
