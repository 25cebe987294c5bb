"""``SandboxState``: the world, the authorizations, the counters and the faults.

One object owns everything a running sandbox knows. The HTTP app calls
``process`` for every TikTok request; tests and the admin API call the other
methods. A re-entrant lock makes each of them atomic, so a test thread may mutate
the world while a server thread answers requests.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gmv_sandbox.auth import AccessToken, AuthCode, Authorizations, DeveloperApp
from gmv_sandbox.errors import (
    DEFAULT_MESSAGES,
    InvalidChange,
    TikTokCode,
    TikTokError,
    UnknownObject,
)
from gmv_sandbox.faults import (
    EVERY_ENDPOINT,
    NO_FAULT,
    FaultDecision,
    FaultInjector,
    FaultKind,
    FaultRule,
)
from gmv_sandbox.surface import ENDPOINTS_BY_NAME, Call, Endpoint, authenticate
from gmv_sandbox.traffic import Traffic
from gmv_sandbox.views import (
    advertiser_info_item,
    bc_item,
    gmv_max_store_item,
    oauth_advertiser_item,
    product_item,
    store_item,
)
from gmv_sandbox.world import (
    AD_CREATION_KINDS,
    Advertiser,
    BusinessCenter,
    Product,
    ProductQuery,
    Store,
    World,
    WorldSpec,
    derive_seed,
)

DEFAULT_PRODUCT_PAGE_SIZE_MAX = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to send back for one TikTok request.

    ``fault`` set to ``DROP`` means close the connection without answering; set to
    ``HTTP_ERROR`` it means answer ``http_status`` with a plain-text body.
    """

    body: bytes
    request_id: str
    latency_seconds: float = 0.0
    fault: FaultKind | None = None
    http_status: int = 200


class SandboxState:
    """Everything one sandbox instance knows, with its Python admin API."""

    def __init__(
        self,
        world: World | None = None,
        *,
        fault_seed: int = 0,
        product_page_size_max: int = DEFAULT_PRODUCT_PAGE_SIZE_MAX,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.world = world if world is not None else World.generate(WorldSpec())
        self.auths = Authorizations(
            seed=derive_seed(self.world.spec.seed, "apps"), clock=wall_clock
        )
        self.traffic = Traffic(clock)
        self.faults = FaultInjector(fault_seed)
        if product_page_size_max < 1:
            raise ValueError("product_page_size_max must be at least 1")
        self.product_page_size_max = product_page_size_max
        self.lock = threading.RLock()
        self._request_prefix = secrets.token_hex(3).upper()
        self._request_seq = itertools.count(1)

    @classmethod
    def generate(cls, spec: WorldSpec | None = None, **options: Any) -> SandboxState:
        """A state around a freshly generated world."""
        return cls(World.generate(spec or WorldSpec()), **options)

    # -- the TikTok surface ---------------------------------------------------------

    def process(self, endpoint: Endpoint, call: Call) -> Outcome:
        """Answer one TikTok request: auth, QPS, faults, then the handler."""
        with self.lock:
            request_id = self._next_request_id()
            decision = NO_FAULT
            try:
                authenticate(self, endpoint, call)
                self._admit(call)
                decision = self.faults.decide(endpoint.name)
                if decision.kind is not None:
                    self.traffic.record_fault(endpoint.name)
                if decision.kind in (FaultKind.DROP, FaultKind.HTTP_ERROR):
                    return self._faulted(endpoint, call, request_id, decision)
                if decision.kind is FaultKind.ERROR_CODE:
                    assert decision.error_code is not None
                    raise TikTokError(decision.error_code, decision.error_message)
                data = endpoint.handler(self, call)
                code, message = 0, "OK"
            except TikTokError as error:
                code, message, data = error.code, error.message, {}
            token = call.token.access_token if call.token else None
            self.traffic.record(endpoint.name, str(code), token)
            body = orjson.dumps(
                {
                    "code": code,
                    "message": message,
                    "request_id": request_id,
                    "data": data,
                }
            )
        return Outcome(body, request_id, decision.latency_seconds)

    def _admit(self, call: Call) -> None:
        app = call.app
        if app is not None and not self.traffic.admit(app.app_id, app.qps):
            template = DEFAULT_MESSAGES[TikTokCode.APP_RATE_LIMITED]
            raise TikTokError(
                TikTokCode.APP_RATE_LIMITED, template.format(app_id=app.app_id)
            )

    def _faulted(
        self, endpoint: Endpoint, call: Call, request_id: str, decision: FaultDecision
    ) -> Outcome:
        label = (
            "dropped"
            if decision.kind is FaultKind.DROP
            else f"http_{decision.http_status}"
        )
        token = call.token.access_token if call.token else None
        self.traffic.record(endpoint.name, label, token)
        return Outcome(
            b"",
            request_id,
            decision.latency_seconds,
            decision.kind,
            decision.http_status,
        )

    def _next_request_id(self) -> str:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        return f"{stamp}{self._request_prefix}{next(self._request_seq):010d}"

    # -- scoping ---------------------------------------------------------------------

    def advertisers_of(self, token: AccessToken) -> list[Advertiser]:
        """Existing advertisers the token may use, in world order."""
        return self._advertisers_for([token])

    def business_centers_of(self, token: AccessToken) -> list[BusinessCenter]:
        """Business centers ``bc/get`` shows to the token."""
        return self._business_centers_for([token])

    def _advertisers_for(self, tokens: list[AccessToken]) -> list[Advertiser]:
        return [
            advertiser
            for advertiser_id, advertiser in self.world.advertisers.items()
            if any(token.covers(advertiser_id) for token in tokens)
        ]

    def _business_centers_for(self, tokens: list[AccessToken]) -> list[BusinessCenter]:
        if any(t.advertiser_ids is None and not t.revoked_advertisers for t in tokens):
            return list(self.world.business_centers.values())
        reachable = {
            bc_id
            for advertiser in self._advertisers_for(tokens)
            for bc_id in advertiser.bc_ids
        }
        return [
            center
            for bc_id, center in self.world.business_centers.items()
            if bc_id in reachable
        ]

    # -- apps and authorizations -----------------------------------------------------

    def create_app(
        self,
        *,
        app_id: str | None = None,
        secret: str | None = None,
        name: str | None = None,
        qps: int = 10,
    ) -> DeveloperApp:
        """Register a developer app (``qps`` 0: no app-wide limit)."""
        with self.lock:
            return self.auths.create_app(
                app_id=app_id, secret=secret, name=name, qps=qps
            )

    def set_app_qps(self, app_id: str, qps: int) -> DeveloperApp:
        """Change an app's QPS limit."""
        with self.lock:
            return self.auths.set_qps(app_id, qps)

    def mint_auth_code(
        self,
        app_id: str,
        advertiser_ids: Iterable[str] | None = None,
        *,
        ttl_seconds: float = 3600.0,
    ) -> AuthCode:
        """A single-use auth code for ``advertiser_ids`` (``None``: all, also later)."""
        with self.lock:
            granted = None if advertiser_ids is None else list(advertiser_ids)
            self._require_advertisers(granted)
            return self.auths.mint_auth_code(app_id, granted, ttl_seconds=ttl_seconds)

    def issue_token(
        self,
        app_id: str,
        advertiser_ids: Iterable[str] | None = None,
        *,
        access_token: str | None = None,
    ) -> AccessToken:
        """An access token without the auth-code round trip."""
        with self.lock:
            granted = None if advertiser_ids is None else list(advertiser_ids)
            self._require_advertisers(granted)
            return self.auths.issue_token(app_id, granted, access_token=access_token)

    def revoke_token(self, access_token: str) -> AccessToken:
        """Revoke a token; its next call gets 40105."""
        with self.lock:
            return self.auths.revoke(access_token)

    def revoke_advertiser(self, access_token: str, advertiser_id: str) -> AccessToken:
        """Withdraw one advertiser's authorization from a token."""
        with self.lock:
            return self.auths.revoke_advertiser(access_token, advertiser_id)

    def _require_advertisers(self, advertiser_ids: list[str] | None) -> None:
        missing = [
            advertiser_id
            for advertiser_id in advertiser_ids or []
            if advertiser_id not in self.world.advertisers
        ]
        if missing:
            raise UnknownObject("unknown advertisers", advertiser_ids=missing)

    # -- world mutations ---------------------------------------------------------------

    def add_business_center(self, **fields: Any) -> BusinessCenter:
        """Create a business center (any ``bc/get`` field may be given)."""
        with self.lock:
            return self.world.add_business_center(**fields)

    def update_business_center(self, bc_id: str, **changes: Any) -> BusinessCenter:
        """Rename or otherwise change a business center."""
        with self.lock:
            return self.world.update_business_center(bc_id, **changes)

    def remove_business_center(self, bc_id: str) -> None:
        """Delete a business center that no store is authorized through."""
        with self.lock:
            self.world.remove_business_center(bc_id)

    def add_advertiser(
        self,
        *,
        owner_bc_id: str | None,
        partner_bc_ids: Iterable[str] = (),
        stores: int = 0,
        products_per_store: int | None = None,
        **fields: Any,
    ) -> Advertiser:
        """Create an advertiser, optionally with new stores."""
        with self.lock:
            return self.world.add_advertiser(
                owner_bc_id=owner_bc_id,
                partner_bc_ids=list(partner_bc_ids),
                stores=stores,
                products_per_store=products_per_store,
                **fields,
            )

    def update_advertiser(self, advertiser_id: str, **changes: Any) -> Advertiser:
        """Rename an advertiser or change its status, currency, timezone, ..."""
        with self.lock:
            return self.world.update_advertiser(advertiser_id, **changes)

    def remove_advertiser(self, advertiser_id: str) -> None:
        """Delete an advertiser (and the stores only it used)."""
        with self.lock:
            self.world.remove_advertiser(advertiser_id)

    def move_advertiser(
        self,
        advertiser_id: str,
        to_bc_id: str | None,
        *,
        keep_old_as_partner: bool = False,
    ) -> Advertiser:
        """Change an advertiser's owner business center (``None``: orphan it)."""
        with self.lock:
            return self.world.move_advertiser(
                advertiser_id, to_bc_id, keep_old_as_partner=keep_old_as_partner
            )

    def set_partner_business_centers(
        self, advertiser_id: str, bc_ids: Iterable[str]
    ) -> Advertiser:
        """Replace the partner business centers of an advertiser."""
        with self.lock:
            return self.world.set_partner_business_centers(advertiser_id, bc_ids)

    def add_store(
        self,
        advertiser_id: str,
        *,
        store_authorized_bc_id: str | None = None,
        products: int | None = None,
        **fields: Any,
    ) -> Store:
        """Create a store for an advertiser with ``products`` generated products."""
        with self.lock:
            return self.world.add_store(
                advertiser_id,
                store_authorized_bc_id=store_authorized_bc_id,
                products=products,
                **fields,
            )

    def update_store(self, store_id: str, **changes: Any) -> Store:
        """Rename a store, change its status, GMV Max availability, BC, ..."""
        with self.lock:
            return self.world.update_store(store_id, **changes)

    def remove_store(self, store_id: str) -> None:
        """Delete a store."""
        with self.lock:
            self.world.remove_store(store_id)

    def link_store(self, store_id: str, advertiser_id: str) -> Store:
        """Let another advertiser use a store."""
        with self.lock:
            return self.world.link_store(store_id, advertiser_id)

    def unlink_store(self, store_id: str, advertiser_id: str) -> Store:
        """Take a store away from one advertiser."""
        with self.lock:
            return self.world.unlink_store(store_id, advertiser_id)

    def add_product(self, store_id: str, **fields: Any) -> Product:
        """Add a product to a store (unspecified fields are generated)."""
        with self.lock:
            return self.world.add_product(store_id, **fields)

    def update_product(
        self, store_id: str, item_group_id: str, **changes: Any
    ) -> Product:
        """Change a product's title, prices, status, stock, occupancy, ..."""
        with self.lock:
            return self.world.update_product(store_id, item_group_id, **changes)

    def remove_product(self, store_id: str, item_group_id: str) -> None:
        """Delete a product."""
        with self.lock:
            self.world.remove_product(store_id, item_group_id)

    def set_eligibility(
        self,
        store_id: str,
        item_group_id: str,
        *,
        ad_creation_eligible: str,
        eligible: bool | None,
        advertiser_id: str | None = None,
    ) -> Product:
        """Force a product (in)eligible for GMV_MAX or CUSTOM_SHOP_ADS."""
        with self.lock:
            return self.world.set_eligibility(
                store_id,
                item_group_id,
                ad_creation_eligible=ad_creation_eligible,
                eligible=eligible,
                advertiser_id=advertiser_id,
            )

    def world_stats(self) -> dict[str, int]:
        """Object counts of the world."""
        with self.lock:
            return self.world.stats()

    # -- faults and counters -----------------------------------------------------------

    def set_faults(
        self, rules: Iterable[FaultRule], *, seed: int | None = None
    ) -> None:
        """Replace the fault rules (and restart their RNG when ``seed`` is given)."""
        checked = [_known_endpoint(rule) for rule in rules]
        with self.lock:
            self.faults.set_rules(checked, seed=seed)

    def add_fault(self, rule: FaultRule) -> None:
        """Append one fault rule."""
        _known_endpoint(rule)
        with self.lock:
            self.faults.add_rule(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        with self.lock:
            self.faults.clear()

    def fault_rules(self) -> list[dict[str, Any]]:
        """The active fault rules."""
        with self.lock:
            return [rule.as_dict() for rule in self.faults.rules]

    def counters(self) -> dict[str, Any]:
        """Calls and outcomes per endpoint, faults, per-app calls, throttles and
        max QPS, and calls per token (see ``Traffic.snapshot``)."""
        with self.lock:
            return self.traffic.snapshot()

    def reset_counters(self) -> None:
        """Zero every counter and QPS window."""
        with self.lock:
            self.traffic.reset()

    # -- expected data ----------------------------------------------------------------

    def snapshot(
        self,
        *,
        access_token: str | None = None,
        app_id: str | None = None,
        include_products: bool = False,
        ad_creation_eligible: str | None = None,
    ) -> dict[str, Any]:
        """What a complete sync through a token (or all live tokens of an app) sees.

        Keys: ``business_centers`` (``bc/get`` items), ``advertisers``
        (``oauth2/advertiser/get`` items), ``advertiser_info`` (``advertiser/info``
        items with default fields), ``stores`` and ``gmv_max_stores`` (per
        advertiser id), and with ``include_products`` a ``products`` list with one
        entry per advertiser/store pair holding every ``store/product/get`` item for
        ``ad_creation_eligible``.
        """
        with self.lock:
            tokens = self._tokens_for(access_token, app_id)
            advertisers = self._advertisers_for(tokens)
            centers = self._business_centers_for(tokens)
            result: dict[str, Any] = {
                "revision": self.world.revision,
                "business_centers": [bc_item(c) for c in centers],
                "advertisers": [oauth_advertiser_item(a) for a in advertisers],
                "advertiser_info": [advertiser_info_item(a) for a in advertisers],
                "stores": self._expected_stores(advertisers),
                "gmv_max_stores": self._expected_gmv_max_stores(advertisers),
            }
            if include_products:
                result["products"] = self._expected_product_lists(
                    advertisers, ad_creation_eligible
                )
            return result

    def _expected_stores(
        self, advertisers: list[Advertiser]
    ) -> dict[str, list[dict[str, Any]]]:
        return {
            a.advertiser_id: [
                store_item(s) for s in self.world.stores_of(a.advertiser_id)
            ]
            for a in advertisers
        }

    def _expected_gmv_max_stores(
        self, advertisers: list[Advertiser]
    ) -> dict[str, list[dict[str, Any]]]:
        return {
            a.advertiser_id: [
                gmv_max_store_item(self.world, s, a)
                for s in self.world.stores_of(a.advertiser_id)
            ]
            for a in advertisers
        }

    def _expected_product_lists(
        self, advertisers: list[Advertiser], kind: str | None
    ) -> list[dict[str, Any]]:
        return [
            {
                "advertiser_id": a.advertiser_id,
                "store_id": s.store_id,
                "bc_id": s.store_authorized_bc_id,
                "ad_creation_eligible": kind,
                "store_products": self._product_items(s, a.advertiser_id, kind),
            }
            for a in advertisers
            for s in self.world.stores_of(a.advertiser_id)
        ]

    def expected_products(
        self,
        store_id: str,
        *,
        advertiser_id: str | None = None,
        ad_creation_eligible: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every ``store/product/get`` item of one store, all pages together."""
        with self.lock:
            store = self.world.store(store_id)
            if advertiser_id is not None:
                self.world.advertiser(advertiser_id)
            return self._product_items(store, advertiser_id, ad_creation_eligible)

    def _product_items(
        self, store: Store, advertiser_id: str | None, kind: str | None
    ) -> list[dict[str, Any]]:
        if kind is not None and kind not in AD_CREATION_KINDS:
            raise InvalidChange(
                "ad_creation_eligible must be GMV_MAX or CUSTOM_SHOP_ADS",
                ad_creation_eligible=kind,
            )
        query = ProductQuery(advertiser_id=advertiser_id, ad_creation_eligible=kind)
        return [product_item(p, kind) for p in self.world.select_products(store, query)]

    def _tokens_for(
        self, access_token: str | None, app_id: str | None
    ) -> list[AccessToken]:
        if (access_token is None) == (app_id is None):
            raise InvalidChange("give exactly one of access_token and app_id")
        if access_token is not None:
            token = self.auths.live_token(access_token)
            if token is None:
                raise UnknownObject("no live access token like that")
            return [token]
        assert app_id is not None
        self.auths.app(app_id)
        return self.auths.live_tokens_of(app_id)


def _known_endpoint(rule: FaultRule) -> FaultRule:
    if rule.endpoint != EVERY_ENDPOINT and rule.endpoint not in ENDPOINTS_BY_NAME:
        raise InvalidChange(
            f"no endpoint {rule.endpoint}; use * or one of {', '.join(ENDPOINTS_BY_NAME)}",
            endpoint=rule.endpoint,
        )
    return rule
