"""The TikTok endpoints: parameter checks and answers, free of any HTTP detail.

Each handler takes the state and a ``Call`` (query parameters, JSON body, the
resolved token and app) and returns the envelope's ``data`` or raises
``TikTokError``. ``ENDPOINTS`` lists them with their method and how the caller
authenticates; ``gmv_sandbox.app`` binds them under ``/open_api/v1.3/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import orjson

from gmv_sandbox.auth import AccessToken, DeveloperApp
from gmv_sandbox.errors import (
    TikTokCode,
    TikTokError,
    no_permission,
    param_error,
)
from gmv_sandbox.views import (
    ADVERTISER_INFO_FIELDS,
    advertiser_info_item,
    bc_item,
    gmv_max_store_item,
    oauth_advertiser_item,
    page_info,
    product_item,
    store_item,
)
from gmv_sandbox.world import AD_CREATION_KINDS, Advertiser, ProductQuery, Store

if TYPE_CHECKING:
    from gmv_sandbox.state import SandboxState

API_PREFIX: Final = "/open_api/v1.3/"
BC_PAGE_SIZE_MAX: Final = 50
STORE_PAGE_SIZE_MAX: Final = 100
ADVERTISER_IDS_MAX: Final = 100
ITEM_GROUP_IDS_MAX: Final = 10
DEFAULT_PAGE_SIZE: Final = 10

_BC_SCENES: Final = ("SINGLE_ACCOUNT", "TIERED_ACCOUNT")
_BC_KEYWORD_TYPES: Final = ("ASSET", "MEMBER", "PARTNER", "TIER")
_BC_RELATION_TYPES: Final = ("PARENT", "CHILD")
_PRODUCT_FILTER_KEYS: Final = frozenset(
    {"item_group_ids", "ad_creation_eligible", "product_name"}
)
_BC_FILTER_KEYS: Final = frozenset({"keyword", "keyword_type", "relation_type"})


class AuthMode(StrEnum):
    """How an endpoint's caller proves who it is."""

    TOKEN = "token"
    TOKEN_AND_APP = "token_and_app"
    APP_IN_BODY = "app_in_body"


@dataclass(slots=True)
class Call:
    """One request as the handlers see it."""

    params: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = field(default_factory=dict)
    access_token: str | None = None
    token: AccessToken | None = None
    app: DeveloperApp | None = None

    @property
    def live_token(self) -> AccessToken:
        """The authenticated token (the endpoint's auth mode guarantees one)."""
        assert self.token is not None
        return self.token


Handler = Callable[["SandboxState", Call], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A TikTok path (without prefix and trailing slash), its method and handler."""

    name: str
    method: str
    auth: AuthMode
    handler: Handler

    @property
    def path(self) -> str:
        """The full path, with TikTok's mandatory trailing slash."""
        return f"{API_PREFIX}{self.name}/"


# -- parameter parsing ----------------------------------------------------------


def _text(call: Call, name: str, *, required: bool = False) -> str | None:
    value = call.params.get(name)
    if value is None or value == "":
        if required:
            raise param_error(f"{name}: Missing data for required field.")
        return None
    return value


def _required(call: Call, name: str) -> str:
    value = _text(call, name, required=True)
    assert value is not None
    return value


def _int(call: Call, name: str, *, default: int, low: int, high: int | None) -> int:
    raw = _text(call, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise param_error(f"{name}: Not a valid integer.") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise param_error(f"{name}: Must be {bound}.")
    return value


def _json(call: Call, name: str, expected: type, *, required: bool = False) -> Any:
    raw = _text(call, name, required=required)
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise param_error(f"{name}: Not a valid JSON string.") from None
    if not isinstance(value, expected):
        kind = "a JSON array" if expected is list else "a JSON object"
        raise param_error(f"{name}: Must be {kind}.")
    return value


def _ids(values: list[Any], name: str) -> list[str]:
    ids = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise param_error(f"{name}: Items must be strings.")
        text = str(value)
        if not text.isdigit():
            raise param_error(f"{name}: {text} is not a valid id.")
        ids.append(text)
    return ids


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise param_error(f"{name}: Must be one of: {', '.join(allowed)}.")
    return str(value)


def _body_text(call: Call, name: str) -> str:
    value = (call.body or {}).get(name)
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise param_error(f"{name}: Missing data for required field.")
    return str(value)


def _page(items: list[Any], page: int, page_size: int) -> list[Any]:
    start = (page - 1) * page_size
    return items[start : start + page_size]


# -- authorization ---------------------------------------------------------------


def _advertiser(state: SandboxState, call: Call, advertiser_id: str) -> Advertiser:
    advertiser = state.world.advertisers.get(advertiser_id)
    if advertiser is None or not call.live_token.covers(advertiser_id):
        raise no_permission(
            f"No permission to operate advertiser {advertiser_id} with this token."
        )
    return advertiser


def _store_for(
    state: SandboxState, call: Call, store_id: str, advertiser_id: str | None
) -> Store:
    store = state.world.stores.get(store_id)
    denied = no_permission(f"No permission to operate store {store_id}.")
    if store is None:
        raise denied
    if advertiser_id is not None:
        _advertiser(state, call, advertiser_id)
        if advertiser_id not in store.advertiser_ids:
            raise denied
    elif not any(call.live_token.covers(a) for a in store.advertiser_ids):
        raise denied
    return store


def authenticate(state: SandboxState, endpoint: Endpoint, call: Call) -> None:
    """Resolve who calls: the token (and its app) or the app named in the body.

    Raises 40104 for a missing token, 40105 for an unknown or revoked one, 40002 for
    a body that is not a JSON object and 40101 for a wrong app_id/secret pair.
    """
    if endpoint.auth is AuthMode.APP_IN_BODY:
        if call.body is None:
            raise param_error("Request body must be a JSON object.")
        app_id = _body_text(call, "app_id")
        call.app = state.auths.check_app(app_id, _body_text(call, "secret"))
        return
    if not call.access_token:
        raise TikTokError(TikTokCode.ACCESS_TOKEN_EMPTY)
    token = state.auths.live_token(call.access_token)
    if token is None:
        raise TikTokError(TikTokCode.ACCESS_TOKEN_INVALID)
    call.token = token
    call.app = state.auths.apps.get(token.app_id)


# -- handlers -------------------------------------------------------------------


def oauth2_access_token(state: SandboxState, call: Call) -> dict[str, Any]:
    """Exchange an auth code for a long-term access token."""
    assert call.app is not None
    auth_code = _body_text(call, "auth_code")
    return_ids = (call.body or {}).get("return_advertiser_ids", True)
    if not isinstance(return_ids, bool):
        raise param_error("return_advertiser_ids: Not a valid boolean.")
    token = state.auths.exchange(call.app, auth_code)
    data: dict[str, Any] = {"access_token": token.access_token}
    if return_ids:
        data["advertiser_ids"] = [a.advertiser_id for a in state.advertisers_of(token)]
    data["scope"] = list(token.scope)
    return data


def oauth2_revoke_token(state: SandboxState, call: Call) -> dict[str, Any]:
    """Revoke a token of the calling app."""
    assert call.app is not None
    token = state.auths.live_token(_body_text(call, "access_token"))
    if token is None or token.app_id != call.app.app_id:
        raise TikTokError(TikTokCode.ACCESS_TOKEN_INVALID)
    advertiser_ids = [a.advertiser_id for a in state.advertisers_of(token)]
    state.auths.revoke(token.access_token)
    return {"app_id": call.app.app_id, "advertiser_ids": advertiser_ids}


def oauth2_advertiser_get(state: SandboxState, call: Call) -> dict[str, Any]:
    """The advertisers the token was granted (app_id and secret must match it)."""
    app = state.auths.check_app(_required(call, "app_id"), _required(call, "secret"))
    if app.app_id != call.live_token.app_id:
        raise TikTokError(
            TikTokCode.ACCESS_TOKEN_INVALID, "Access token does not belong to this app."
        )
    advertisers = state.advertisers_of(call.live_token)
    return {"list": [oauth_advertiser_item(a) for a in advertisers]}


def bc_get(state: SandboxState, call: Call) -> dict[str, Any]:
    """Business centers the authorizing user belongs to, paged."""
    page = _int(call, "page", default=1, low=1, high=None)
    page_size = _int(
        call, "page_size", default=DEFAULT_PAGE_SIZE, low=1, high=BC_PAGE_SIZE_MAX
    )
    scene = _text(call, "scene")
    if scene is not None:
        _choice(scene, "scene", _BC_SCENES)
    centers = state.business_centers_of(call.live_token)
    bc_id = _text(call, "bc_id")
    if bc_id is not None:
        centers = [c for c in centers if c.bc_id == bc_id]
        if not centers:
            raise no_permission(f"No permission to operate business center {bc_id}.")
    filtering = _json(call, "filtering", dict) or {}
    unknown = sorted(set(filtering) - _BC_FILTER_KEYS)
    if unknown:
        raise param_error(f"filtering.{unknown[0]}: Unknown field.")
    if "keyword_type" in filtering:
        _choice(filtering["keyword_type"], "filtering.keyword_type", _BC_KEYWORD_TYPES)
    if "relation_type" in filtering:
        _choice(
            filtering["relation_type"], "filtering.relation_type", _BC_RELATION_TYPES
        )
    keyword = filtering.get("keyword")
    if keyword:
        needle = str(keyword).casefold()
        centers = [c for c in centers if needle in c.name.casefold()]
    return {
        "list": [bc_item(c) for c in _page(centers, page, page_size)],
        "page_info": page_info(page, page_size, len(centers)),
    }


def advertiser_info(state: SandboxState, call: Call) -> dict[str, Any]:
    """Details of up to 100 granted advertisers."""
    advertiser_ids = _ids(
        _json(call, "advertiser_ids", list, required=True), "advertiser_ids"
    )
    if not advertiser_ids:
        raise param_error("advertiser_ids: Length must be between 1 and 100.")
    if len(advertiser_ids) > ADVERTISER_IDS_MAX:
        raise TikTokError(
            TikTokCode.ID_LIMIT_EXCEEDED,
            f"Too many IDs provided: at most {ADVERTISER_IDS_MAX} advertiser_ids.",
        )
    fields = _json(call, "fields", list)
    if fields is not None:
        for name in fields:
            _choice(name, "fields", ADVERTISER_INFO_FIELDS)
    unique = list(dict.fromkeys(advertiser_ids))
    advertisers = [_advertiser(state, call, a) for a in unique]
    return {"list": [advertiser_info_item(a, fields) for a in advertisers]}


def store_list(state: SandboxState, call: Call) -> dict[str, Any]:
    """Stores an advertiser can use.

    TikTok documents no paging here; the sandbox accepts ``page``/``page_size``
    anyway and, without ``page_size``, answers everything on one page.
    """
    advertiser = _advertiser(state, call, _required(call, "advertiser_id"))
    store_type = _text(call, "store_type")
    if store_type is not None:
        _choice(store_type, "store_type", ("TIKTOK_SHOP",))
    stores = state.world.stores_of(advertiser.advertiser_id)
    store_id = _text(call, "store_id")
    if store_id is not None:
        stores = [s for s in stores if s.store_id == store_id]
    page = _int(call, "page", default=1, low=1, high=None)
    page_size = _int(
        call,
        "page_size",
        default=max(len(stores), 1),
        low=1,
        high=max(STORE_PAGE_SIZE_MAX, len(stores)),
    )
    return {
        "stores": [store_item(s) for s in _page(stores, page, page_size)],
        "page_info": page_info(page, page_size, len(stores)),
    }


def store_product_get(state: SandboxState, call: Call) -> dict[str, Any]:
    """Products of a store, optionally only those an advertiser may advertise."""
    bc_id = _required(call, "bc_id")
    store_id = _required(call, "store_id")
    advertiser_id = _text(call, "advertiser_id")
    query = _product_query(call, advertiser_id)
    page = _int(call, "page", default=1, low=1, high=None)
    page_size = _int(
        call,
        "page_size",
        default=DEFAULT_PAGE_SIZE,
        low=1,
        high=state.product_page_size_max,
    )
    store = _store_for(state, call, store_id, advertiser_id)
    if store.store_authorized_bc_id != bc_id:
        raise no_permission(
            f"Business center {bc_id} is not authorized for store {store_id}."
        )
    selected = state.world.select_products(store, query)
    kind = query.ad_creation_eligible
    return {
        "store_products": [
            product_item(p, kind) for p in _page(selected, page, page_size)
        ],
        "page_info": page_info(page, page_size, len(selected)),
    }


def _product_query(call: Call, advertiser_id: str | None) -> ProductQuery:
    filtering = _json(call, "filtering", dict) or {}
    unknown = sorted(set(filtering) - _PRODUCT_FILTER_KEYS)
    if unknown:
        raise param_error(f"filtering.{unknown[0]}: Unknown field.")
    kind = filtering.get("ad_creation_eligible")
    if kind is not None:
        _choice(kind, "filtering.ad_creation_eligible", AD_CREATION_KINDS)
    raw_ids = filtering.get("item_group_ids") or []
    if not isinstance(raw_ids, list):
        raise param_error("filtering.item_group_ids: Must be a JSON array.")
    if len(raw_ids) > ITEM_GROUP_IDS_MAX:
        raise param_error(
            f"filtering.item_group_ids: At most {ITEM_GROUP_IDS_MAX} items."
        )
    product_name = filtering.get("product_name")
    if product_name is not None and not isinstance(product_name, str):
        raise param_error("filtering.product_name: Not a valid string.")
    sort_field = _text(call, "sort_field")
    if sort_field is not None:
        _choice(sort_field, "sort_field", ("min_price", "historical_sales"))
    sort_type = _text(call, "sort_type") or "ASC"
    _choice(sort_type, "sort_type", ("ASC", "DESC"))
    return ProductQuery(
        advertiser_id=advertiser_id,
        ad_creation_eligible=kind,
        item_group_ids=tuple(_ids(raw_ids, "filtering.item_group_ids")),
        product_name=product_name or None,
        sort_field=sort_field,
        sort_type=sort_type,
    )


def gmv_max_store_list(state: SandboxState, call: Call) -> dict[str, Any]:
    """Stores of an advertiser with their GMV Max availability."""
    advertiser = _advertiser(state, call, _required(call, "advertiser_id"))
    stores = state.world.stores_of(advertiser.advertiser_id)
    return {
        "store_list": [gmv_max_store_item(state.world, s, advertiser) for s in stores]
    }


ENDPOINTS: Final = (
    Endpoint("oauth2/access_token", "POST", AuthMode.APP_IN_BODY, oauth2_access_token),
    Endpoint("oauth2/revoke_token", "POST", AuthMode.APP_IN_BODY, oauth2_revoke_token),
    Endpoint(
        "oauth2/advertiser/get", "GET", AuthMode.TOKEN_AND_APP, oauth2_advertiser_get
    ),
    Endpoint("bc/get", "GET", AuthMode.TOKEN, bc_get),
    Endpoint("advertiser/info", "GET", AuthMode.TOKEN, advertiser_info),
    Endpoint("store/list", "GET", AuthMode.TOKEN, store_list),
    Endpoint("store/product/get", "GET", AuthMode.TOKEN, store_product_get),
    Endpoint("gmv_max/store/list", "GET", AuthMode.TOKEN, gmv_max_store_list),
)
ENDPOINTS_BY_NAME: Final = {endpoint.name: endpoint for endpoint in ENDPOINTS}
