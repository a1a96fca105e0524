"""The URL's text, made storable before any route sees it: a NUL (`%00`) is read as U+FFFD.

PostgreSQL refuses a NUL inside text with an error, SQLite stores and compares it: a task ID or a paging
cursor with one was a 500 on one database and a 404 on the other. A NUL is read as U+FFFD, the
replacement character, as an invalid UTF-8 byte in the path already is (the server decodes it so). No
ID or name reelgate stores contains either, so such a lookup finds nothing, alike on both databases.
Bodies are checked, and refused, where they are read (`api/body.py`).
"""

from __future__ import annotations

import re

from starlette.types import Scope

_ENCODED_NUL = re.compile(rb"%00")
_ENCODED_REPLACEMENT = b"%EF%BF%BD"


def nul_free(scope: Scope) -> None:
    """The request's path and query string with every NUL read as U+FFFD."""
    scope["path"] = scope["path"].replace("\x00", "\ufffd")
    scope["query_string"] = _ENCODED_NUL.sub(_ENCODED_REPLACEMENT, scope.get("query_string", b""))
