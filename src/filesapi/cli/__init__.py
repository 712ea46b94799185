"""The ``filesapi`` command: the click group ``main`` (the ``filesapi`` entry point and
``python -m filesapi``), with the commands of each audience in its own module:

- ``serve``: ``filesapi serve`` and its options;
- ``admin``: the operator's commands on the server's own storage: ``keys``, ``db``, ``stats``,
  ``seed``, ``gc``, ``scrub``, ``reset``;
- ``files``: the client commands over HTTP: ``upload``, ``ls``, ``stat``, ``download``, ``rm``.

What several of them share is private: ``_options`` (the storage and progress options, the loopback
check), ``_output`` (error lines, progress bars, sizes) and ``_storage`` (opening the storage).
"""

from __future__ import annotations

import click

from filesapi import __version__
from filesapi.cli import admin, files, serve

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="filesapi")
def main() -> None:
    """filesapi: a server for the Anthropic Files API that the official SDKs talk to unchanged.

    Start it with `filesapi serve`, then point an SDK at it, e.g.
    ANTHROPIC_BASE_URL=http://127.0.0.1:8000 ANTHROPIC_API_KEY=anything.
    """


for _command in (*serve.COMMANDS, *admin.COMMANDS, *files.COMMANDS):
    main.add_command(_command)
