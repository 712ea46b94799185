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

The mapping is read only while a connection of this process holds the database open in WAL mode
(``SqliteRunner`` opens the index after its reader's first read, and stops reading it when it
closes): SQLite shrinks the ``-shm`` file only when a first connection opens it, and reading a
shrunk mapping would end the process (SIGBUS).

**Its file is never closed while it may be in use.** SQLite's locks on the ``-shm`` file are POSIX
record locks, and POSIX drops every lock a process holds on a file when the process closes any
descriptor of it: closing ours would drop the lock that tells other processes this one has the
index open, and the next process to open the database would rebuild (shrink) it under this one's
feet. (Measured the hard way: a worker died of SIGBUS.) So each ``-shm`` file is opened once per
process, kept in ``_OPEN`` for every runner of that process, and closed only once it is unlinked,
when no connection of any process can be using it.
"""

from __future__ import annotations

import mmap
import os
import threading

__all__ = ["HEADER_BYTES", "WalIndex", "wal_index"]

HEADER_BYTES = 48  # one copy of the WAL-index header
_IS_INIT = 12  # the header's isInit byte: 1 once a connection has built the index


class WalIndex:
    """The WAL-index header of one ``-shm`` file, mapped read-only (use ``wal_index``)."""

    def __init__(self, shm_path: str) -> None:
        self.path = shm_path
        self._map: mmap.mmap | None = None
        self._fd = os.open(shm_path, os.O_RDONLY)  # kept open: see the module's docstring
        stat = os.fstat(self._fd)
        self.key = (stat.st_dev, stat.st_ino)
        try:
            if stat.st_size < 2 * HEADER_BYTES:
                raise OSError(f"{shm_path} holds no WAL-index header yet")
            self._map = mmap.mmap(self._fd, 2 * HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ)
        except (OSError, ValueError) as exc:  # (the descriptor stays open: it may be the one in use)
            raise OSError(f"{shm_path}: {exc}") from exc

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

    def unlinked(self) -> bool:
        return os.fstat(self._fd).st_nlink == 0

    def _close(self) -> None:
        """Only for a file that is gone (or was never an index): closing drops this process's locks."""
        if self._map is not None:
            self._map.close()
            self._map = None
        os.close(self._fd)


_OPEN: dict[tuple[int, int], WalIndex] = {}  # (device, inode) -> the index, one per process
# Indexes opened but not needed (the file was replaced between stat and open): kept, never closed
# (collecting one would close its mapping's descriptor, and with it this process's locks).
_NEVER_CLOSED: list[WalIndex] = []
_OPEN_LOCK = threading.Lock()


def wal_index(db_path: str) -> WalIndex:
    """The WAL index of the database at ``db_path``, opened at most once per file per process
    (OSError if there is none yet)."""
    shm_path = db_path + "-shm"
    stat = os.stat(shm_path)
    if stat.st_size < 2 * HEADER_BYTES:
        raise OSError(f"{shm_path} holds no WAL-index header yet")
    with _OPEN_LOCK:
        found = _OPEN.get((stat.st_dev, stat.st_ino))
        if found is not None:
            return found
        for key, index in list(_OPEN.items()):  # files SQLite deleted since: safe to close now
            if index.unlinked():
                del _OPEN[key]
                index._close()
        opened = WalIndex(shm_path)
        if opened.key in _OPEN:  # (replaced between the stat and the open: another file now)
            _NEVER_CLOSED.append(opened)
            return _OPEN[opened.key]
        _OPEN[opened.key] = opened
        return opened
