"""Reading every page of a TikTok listing, and checking that nothing was missed.

TikTok pages by number (``page`` from 1, ``page_size`` up to a per-endpoint maximum) and
reports ``page_info.total_number`` / ``total_page``. A read is complete when the rows read
equal ``total_number`` and every page agreed on it; anything else means the listing moved
under us (or TikTok lied), and the sync must not tombstone rows on such a read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from gmv_common.tiktok.errors import IncompleteReadError
from gmv_common.tiktok.models import Page, TikTokModel, as_tiktok_id

BC_PAGE_SIZE = 50
STORE_PRODUCT_PAGE_SIZE = 100
ADVERTISER_INFO_BATCH_SIZE = 100

ItemT = TypeVar("ItemT", bound=TikTokModel)

FetchPage = Callable[[int, int], Awaitable[Page[ItemT]]]
"""``fetch(page, page_size)`` for one endpoint with its filters bound."""


@dataclass(frozen=True, slots=True)
class ReadResult(Generic[ItemT]):
    """Every row of a paginated listing, with what TikTok said the total was."""

    endpoint: str
    items: list[ItemT]
    total_number: int
    pages_read: int
    totals_agreed: bool = True

    @property
    def complete(self) -> bool:
        return self.totals_agreed and len(self.items) == self.total_number


async def iter_pages(
    fetch_page: FetchPage[ItemT],
    *,
    page_size: int,
    first_page: Page[ItemT] | None = None,
) -> AsyncIterator[Page[ItemT]]:
    """Yield pages 1, 2, ... until ``total_page`` (or an empty page) is reached.

    ``first_page`` is page 1 when the caller already has it.
    """
    page_number = 1
    while True:
        if page_number == 1 and first_page is not None:
            page = first_page
        else:
            page = await fetch_page(page_number, page_size)
        yield page
        if page_number >= page.page_info.total_page or not page.items:
            return
        page_number += 1


async def read_all_pages(
    fetch_page: FetchPage[ItemT],
    *,
    endpoint: str,
    page_size: int,
    strict: bool = True,
    first_page: Page[ItemT] | None = None,
) -> ReadResult[ItemT]:
    """Read a whole listing; with ``strict`` raise ``IncompleteReadError`` if incomplete."""
    items: list[ItemT] = []
    totals: set[int] = set()
    pages_read = 0
    pages = iter_pages(fetch_page, page_size=page_size, first_page=first_page)
    async for page in pages:
        items.extend(page.items)
        totals.add(page.page_info.total_number)
        pages_read += 1

    result = ReadResult(
        endpoint=endpoint,
        items=items,
        total_number=max(totals),
        pages_read=pages_read,
        totals_agreed=len(totals) == 1,
    )
    if strict:
        check_complete(result)
    return result


def check_complete(result: ReadResult[ItemT]) -> None:
    if not result.complete:
        raise IncompleteReadError(
            endpoint=result.endpoint,
            rows_read=len(result.items),
            total_number=result.total_number,
        )


def batched_ids(
    ids: Iterable[str | int], *, size: int = ADVERTISER_INFO_BATCH_SIZE
) -> Iterator[list[str]]:
    """Split ids into string batches of at most ``size``, dropping repeats."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    unique = list(dict.fromkeys(as_tiktok_id(value) for value in ids))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


__all__ = [
    "ADVERTISER_INFO_BATCH_SIZE",
    "BC_PAGE_SIZE",
    "STORE_PRODUCT_PAGE_SIZE",
    "FetchPage",
    "ReadResult",
    "batched_ids",
    "check_complete",
    "iter_pages",
    "read_all_pages",
]
