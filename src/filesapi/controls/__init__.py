"""Test controls and the request journal: state one server shares across its worker processes.

- ``shared``: the server's runtime directory (a SQLite file and a small shared memory page);
- ``journal``: every request the server answered (always on);
- ``faults``: fault rules (``--test-controls``);
- the movable clock lives in ``shared`` (``SharedState.now_us``).
"""
