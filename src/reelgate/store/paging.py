"""Cursor paging as OpenAI's list endpoints do it: `limit`, `after` (an id) and `order`.

Rows are ordered by their id, which grows with creation time (ULIDs, or the ledger's integer ids), so
`after` is a stable cursor: new rows never shift a page that was already read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Row, Select
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    limit: int = 20
    #: The id of the last row the caller has seen; the page starts after it.
    after: str | int | None = None
    descending: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


async def fetch_page(
    conn: AsyncConnection,
    query: Select[Any],
    id_column: ColumnElement[Any],
    page: PageRequest,
    convert: Callable[[Row[Any]], T],
) -> Page[T]:
    """One page of `query`, ordered by `id_column`; one row more is read to know whether more follow.

    An empty `after` (a client that sends `after=` with no last id yet) is no cursor: the first page, in
    either order, rather than everything in ascending order and nothing in descending order."""
    if page.after is not None and page.after != "":
        query = query.where(id_column < page.after if page.descending else id_column > page.after)
    order = id_column.desc() if page.descending else id_column.asc()
    rows = list(await conn.execute(query.order_by(order).limit(page.limit + 1)))
    return Page([convert(row) for row in rows[: page.limit]], has_more=len(rows) > page.limit)
