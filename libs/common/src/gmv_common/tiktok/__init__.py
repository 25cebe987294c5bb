"""TikTok API for Business: the client, its errors and models, and the shared rate limiter.

Typical use in a worker::

    limiter = DatabaseRateLimiter(sessionmaker, default_qps=settings.tiktok_default_qps)
    async with TikTokClient(limiter=limiter, settings=settings) as client:
        credentials = TikTokCredentials(app_id=app_id, access_token=SecretStr(token))
        read = await client.get_all_business_centers(credentials, priority=Priority.BULK)
"""

from gmv_common.tiktok.client import (
    RetryPolicy,
    TikTokClient,
    TikTokCredentials,
    encode_query,
    redact_url,
)
from gmv_common.tiktok.errors import (
    IncompleteReadError,
    LimiterTimeoutError,
    TikTokAppCredentialsError,
    TikTokAuthCodeError,
    TikTokAuthError,
    TikTokEndpointError,
    TikTokError,
    TikTokHTTPError,
    TikTokNotFoundError,
    TikTokPermissionError,
    TikTokRateLimitedError,
    TikTokRequestError,
    TikTokTransportError,
    TikTokUnavailableError,
    error_class_for,
)
from gmv_common.tiktok.limiter import (
    DatabaseRateLimiter,
    InMemoryRateLimiter,
    PacerConfig,
    PacerState,
    RateLimiter,
)
from gmv_common.tiktok.models import (
    AccessToken,
    AdvertiserInfo,
    AuthorizedAdvertiser,
    BusinessCenter,
    BusinessCenterInfo,
    GmvMaxStore,
    Page,
    PageInfo,
    Priority,
    RevokedToken,
    Store,
    StoreProduct,
    TikTokModel,
    as_tiktok_id,
)
from gmv_common.tiktok.pagination import (
    ADVERTISER_INFO_BATCH_SIZE,
    BC_PAGE_SIZE,
    STORE_PRODUCT_PAGE_SIZE,
    ReadResult,
    batched_ids,
    check_complete,
    iter_pages,
    read_all_pages,
)

__all__ = [
    "ADVERTISER_INFO_BATCH_SIZE",
    "BC_PAGE_SIZE",
    "STORE_PRODUCT_PAGE_SIZE",
    "AccessToken",
    "AdvertiserInfo",
    "AuthorizedAdvertiser",
    "BusinessCenter",
    "BusinessCenterInfo",
    "DatabaseRateLimiter",
    "GmvMaxStore",
    "InMemoryRateLimiter",
    "IncompleteReadError",
    "LimiterTimeoutError",
    "PacerConfig",
    "PacerState",
    "Page",
    "PageInfo",
    "Priority",
    "RateLimiter",
    "ReadResult",
    "RetryPolicy",
    "RevokedToken",
    "Store",
    "StoreProduct",
    "TikTokAppCredentialsError",
    "TikTokAuthCodeError",
    "TikTokAuthError",
    "TikTokClient",
    "TikTokCredentials",
    "TikTokEndpointError",
    "TikTokError",
    "TikTokHTTPError",
    "TikTokModel",
    "TikTokNotFoundError",
    "TikTokPermissionError",
    "TikTokRateLimitedError",
    "TikTokRequestError",
    "TikTokTransportError",
    "TikTokUnavailableError",
    "as_tiktok_id",
    "batched_ids",
    "check_complete",
    "encode_query",
    "error_class_for",
    "iter_pages",
    "read_all_pages",
    "redact_url",
]
