"""The benchmark harness shared by ``run.py``, ``asgi_servers.py`` and ``s3_blobs.py``: processes and
servers, clients (curl, wrk), anchors, statistics, and the report (table, Markdown, chart)."""
