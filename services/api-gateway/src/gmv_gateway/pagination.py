"""Page/page-size paging shared by the list endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from gmv_common.errors import ValidationFailedError

ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    page: int
    page_size: int
    total: int


class PageParams(BaseModel):
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def page_params(max_page_size: int, default_page_size: int = 20) -> Any:
    """A dependency reading ``page`` and ``page_size``; too large a page is 400."""

    def dependency(
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1)] = default_page_size,
    ) -> PageParams:
        if page_size > max_page_size:
            raise ValidationFailedError(
                f"page_size must be at most {max_page_size}",
                code="PAGE_SIZE_TOO_LARGE",
                details={"max_page_size": max_page_size, "page_size": page_size},
            )
        return PageParams(page=page, page_size=page_size)

    return Depends(dependency)


AccountsPage = Annotated[PageParams, page_params(100)]
ProductsPage = Annotated[PageParams, page_params(200, default_page_size=50)]
RunsPage = Annotated[PageParams, page_params(100)]
