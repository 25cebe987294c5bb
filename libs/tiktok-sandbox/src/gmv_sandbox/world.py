"""The simulated TikTok world: business centers, advertisers, stores and products.

``World.generate(WorldSpec(...))`` builds the same world for the same spec, byte for
byte. Business centers, advertisers and stores are created up front (they are few);
products are not stored at all until something changes them: a store keeps only its
product count and a seed, and ``World.products_of`` regenerates the list from that
seed on demand (an LRU bounded to 100,000 products keeps recently read stores).
The first mutation of a product in a store materializes that store's products into
a dict, which from then on is the source of truth for it.

Relations, as TikTok exposes them:

* an advertiser has at most one owner business center (``owner_bc_id``; *orphan*
  advertisers have none) and any number of partner business centers;
* a store is authorized to exactly one business center (``store_authorized_bc_id``,
  the ``bc_id`` that ``store/product/get`` wants) and is usable by one or more
  advertisers (``Store.advertiser_ids``, the first one being its owner);
* whether a product is eligible for GMV Max or for custom shop ads is decided per
  advertiser: a deterministic hash of the product and the advertiser, unless an
  override was set with ``set_eligibility``.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from random import Random
from typing import Any, Final, TypeVar

from gmv_sandbox.errors import InvalidChange, UnknownObject

GMV_MAX: Final = "GMV_MAX"
CUSTOM_SHOP_ADS: Final = "CUSTOM_SHOP_ADS"
AD_CREATION_KINDS: Final = (GMV_MAX, CUSTOM_SHOP_ADS)
ALL_ADVERTISERS: Final = "*"

PRODUCT_STATUSES: Final = ("AVAILABLE", "NOT_AVAILABLE")
GMV_MAX_ADS_STATUSES: Final = ("OCCUPIED", "UNOCCUPIED")
STORE_STATUSES: Final = ("ACTIVE", "INACTIVE", "NEW_CREATE")
ADVERTISER_STATUSES: Final = (
    "STATUS_ENABLE",
    "STATUS_DISABLE",
    "STATUS_PENDING_CONFIRM",
    "STATUS_PENDING_VERIFIED",
    "STATUS_CONFIRM_FAIL",
    "STATUS_CONFIRM_FAIL_END",
    "STATUS_PENDING_CONFIRM_MODIFY",
    "STATUS_CONFIRM_MODIFY_FAIL",
    "STATUS_LIMIT",
    "STATUS_WAIT_FOR_BPM_AUDIT",
    "STATUS_WAIT_FOR_PUBLIC_AUTH",
    "STATUS_SELF_SERVICE_UNAUDITED",
    "STATUS_CONTRACT_PENDING",
)
ADVERTISER_ROLES: Final = (
    "ROLE_ADVERTISER",
    "ROLE_CHILD_ADVERTISER",
    "ROLE_CHILD_AGENT",
    "ROLE_AGENT",
)
BC_STATUSES: Final = ("REVIEWING", "DENY", "ENABLE", "PUNISH")
BC_TYPES: Final = ("NORMAL", "DIRECT", "AGENCY", "SELF_SERVICE", "SELF_SERVICE_AGENCY")

_BC_ID_RANGE: Final = (7_100_000_000_000_000_000, 7_200_000_000_000_000_000)
_ADVERTISER_ID_RANGE: Final = (7_000_000_000_000_000_000, 7_100_000_000_000_000_000)
_STORE_ID_RANGE: Final = (7_494_000_000_000_000_000, 7_495_000_000_000_000_000)
_CATALOG_ID_RANGE: Final = (7_310_000_000_000_000_000, 7_320_000_000_000_000_000)
_PRODUCT_ID_PREFIX: Final = "1729"

_T = TypeVar("_T")
_MAX_STORES: Final = 8_000_000
_MAX_PRODUCTS_PER_STORE: Final = 100_000_000


@dataclass(frozen=True, slots=True)
class CountryProfile:
    """What an account registered in a country looks like."""

    currency: str
    timezone: str
    display_timezone: str
    language: str
    price_scale: float
    price_decimals: int
    phone_prefix: str


COUNTRIES: Final[dict[str, CountryProfile]] = {
    "US": CountryProfile("USD", "Etc/GMT+8", "America/Los_Angeles", "en", 1, 2, "+1"),
    "GB": CountryProfile("GBP", "Etc/GMT", "Europe/London", "en", 0.8, 2, "+44"),
    "ID": CountryProfile("IDR", "Etc/GMT-7", "Asia/Jakarta", "id", 15_000, 0, "+62"),
    "MY": CountryProfile("MYR", "Etc/GMT-8", "Asia/Kuala_Lumpur", "ms", 4.5, 2, "+60"),
    "TH": CountryProfile("THB", "Etc/GMT-7", "Asia/Bangkok", "th", 35, 2, "+66"),
    "VN": CountryProfile(
        "VND", "Etc/GMT-7", "Asia/Ho_Chi_Minh", "vi", 24_000, 0, "+84"
    ),
    "PH": CountryProfile("PHP", "Etc/GMT-8", "Asia/Manila", "en", 55, 2, "+63"),
    "SG": CountryProfile("SGD", "Etc/GMT-8", "Asia/Singapore", "en", 1.35, 2, "+65"),
}
_COUNTRY_WEIGHTS: Final = {
    "US": 40,
    "GB": 12,
    "ID": 12,
    "MY": 8,
    "TH": 8,
    "VN": 8,
    "PH": 6,
    "SG": 6,
}

_BRAND_HEADS: Final = (
    "Acme", "Blue", "Nova", "Lumen", "Terra", "Peak", "Urban", "Bright", "Coral",
    "Maple", "Silver", "Golden", "Swift", "Pure", "Zen", "Atlas", "Echo", "Vivid",
    "Harbor", "North", "Cedar", "Orbit", "Sunny", "Velvet",
)  # fmt: skip
_BRAND_TAILS: Final = (
    "Labs", "Goods", "Co", "Trading", "Brands", "Studio", "Collective", "Supply",
    "Retail", "Works", "House", "Market",
)  # fmt: skip
_LEGAL_FORMS: Final = ("Ltd", "Inc", "LLC", "Pte Ltd", "Sdn Bhd", "GmbH")
_ACCOUNT_SUFFIXES: Final = (
    "Ads",
    "Shop Ads",
    "GMV",
    "Performance",
    "Always-on",
    "Promo",
)
_STORE_SUFFIXES: Final = ("Official Store", "Shop", "Store", "Outlet", "Flagship")
_INDUSTRIES: Final = ("290303", "290101", "290201", "291001", "290402", "290505")
_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "Beauty & Personal Care": ("Serum", "Lip Tint", "Sunscreen", "Face Mask", "Toner"),
    "Home & Kitchen": ("Air Fryer", "Knife Set", "Storage Box", "Kettle", "Mug"),
    "Womenswear & Underwear": ("Dress", "Cardigan", "Leggings", "Blouse", "Skirt"),
    "Menswear & Underwear": ("Hoodie", "Polo Shirt", "Chinos", "Jacket", "Socks"),
    "Sports & Outdoor": ("Yoga Mat", "Water Bottle", "Dumbbell", "Tent", "Headlamp"),
    "Phones & Electronics": ("Earbuds", "Power Bank", "Phone Case", "Charger", "Cable"),
    "Food & Beverages": (
        "Granola",
        "Coffee Beans",
        "Protein Bar",
        "Green Tea",
        "Honey",
    ),
    "Toys & Hobbies": ("Puzzle", "Building Set", "Plush Toy", "Kite", "Card Game"),
    "Pet Supplies": ("Cat Litter", "Dog Leash", "Pet Bed", "Chew Toy", "Pet Shampoo"),
}
_CATEGORY_NAMES: Final = tuple(_CATEGORIES)
_ADJECTIVES: Final = (
    "Classic", "Premium", "Everyday", "Compact", "Organic", "Ultra", "Soft", "Mini",
    "Deluxe", "Travel", "Eco", "Pro", "Lightweight", "Vintage", "Smart", "Gentle",
)  # fmt: skip
_VARIANTS: Final = (
    "",
    "",
    "",
    " 2-Pack",
    " - Large",
    " Bundle",
    " (New)",
    " Value Pack",
)
_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any parts; stable across processes (unlike ``hash``)."""
    text = "\x1f".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def eligibility_key(advertiser_id: str, kind: str) -> int:
    """The per-advertiser half of the eligibility hash."""
    return zlib.crc32(f"{advertiser_id}:{kind}".encode())


@dataclass(frozen=True, slots=True)
class WorldSpec:
    """Size and shape knobs of a generated world. Same spec, same world."""

    seed: int = 42
    business_centers: int = 3
    advertisers: int = 12
    stores_per_advertiser: int = 2
    products_per_store: int = 40
    product_count_jitter: float = 0.0
    multi_bc_advertiser_share: float = 0.15
    orphan_advertiser_share: float = 0.1
    shared_store_share: float = 0.1
    gmv_max_eligible_share: float = 0.85
    custom_shop_ads_eligible_share: float = 0.75
    image_base_url: str = "https://images.gmv-sandbox.invalid"

    def __post_init__(self) -> None:
        counts = {
            "business_centers": self.business_centers,
            "advertisers": self.advertisers,
            "stores_per_advertiser": self.stores_per_advertiser,
            "products_per_store": self.products_per_store,
        }
        for name, value in counts.items():
            if value < 0:
                raise ValueError(f"{name} must not be negative")
        if self.business_centers == 0 and self.advertisers > 0:
            raise ValueError("advertisers need at least one business center")
        shares = {
            "product_count_jitter": self.product_count_jitter,
            "multi_bc_advertiser_share": self.multi_bc_advertiser_share,
            "orphan_advertiser_share": self.orphan_advertiser_share,
            "shared_store_share": self.shared_store_share,
            "gmv_max_eligible_share": self.gmv_max_eligible_share,
            "custom_shop_ads_eligible_share": self.custom_shop_ads_eligible_share,
        }
        for name, share in shares.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")


@dataclass(slots=True)
class BusinessCenter:
    """A business center as ``bc/get`` describes it."""

    bc_id: str
    name: str
    company: str
    currency: str
    registered_area: str
    status: str
    timezone: str
    type: str
    organization_type: str
    verification_status: str
    user_role: str
    finance_role: str
    profile_image: str


@dataclass(slots=True)
class Advertiser:
    """An ad account with every field ``advertiser/info`` can return."""

    advertiser_id: str
    name: str
    company: str
    status: str
    role: str
    currency: str
    timezone: str
    display_timezone: str
    country: str
    industry: str
    create_time: int
    balance: float
    language: str
    email: str
    contacter: str
    telephone_number: str
    cellphone_number: str
    address: str
    description: str
    rejection_reason: str
    license_no: str
    license_url: str
    company_name_editable: bool
    owner_bc_id: str | None
    partner_bc_ids: list[str] = field(default_factory=list)
    store_ids: list[str] = field(default_factory=list)

    @property
    def bc_ids(self) -> list[str]:
        """Every business center this account is reachable through, owner first."""
        owner = [self.owner_bc_id] if self.owner_bc_id else []
        return owner + [bc_id for bc_id in self.partner_bc_ids if bc_id not in owner]


@dataclass(slots=True)
class Store:
    """A TikTok Shop store usable by one or more advertisers."""

    store_id: str
    id_block: int
    store_name: str
    store_type: str
    store_code: str
    store_authorized_bc_id: str
    catalog_id: str
    targeting_region_codes: list[str]
    currency: str
    store_status: str
    store_role: str
    is_gmv_max_available: bool
    thumbnail_url: str
    exclusive_advertiser_id: str | None
    advertiser_ids: list[str]
    product_seed: int
    generated_products: int
    next_product_seq: int
    products: dict[str, Product] | None = None
    version: int = 0

    @property
    def materialized(self) -> bool:
        """Whether the products live in ``products`` rather than in the seed."""
        return self.products is not None


@dataclass(slots=True)
class Product:
    """A product (SPU) of a store, as ``store/product/get`` lists it."""

    item_group_id: str
    store_id: str
    title: str
    product_image_url: str
    min_price: str
    max_price: str
    currency: str
    historical_sales: int
    category: str
    quantity: int
    status: str
    gmv_max_ads_status: str
    is_running_custom_shop_ads: bool
    salt: int
    eligibility: dict[tuple[str, str], bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProductQuery:
    """One ``store/product/get`` selection, before paging."""

    advertiser_id: str | None = None
    ad_creation_eligible: str | None = None
    item_group_ids: tuple[str, ...] = ()
    product_name: str | None = None
    sort_field: str | None = None
    sort_type: str = "ASC"


_ADVERTISER_EDITABLE: Final = frozenset(
    f.name
    for f in fields(Advertiser)
    if f.name not in {"advertiser_id", "owner_bc_id", "partner_bc_ids", "store_ids"}
)
_BC_EDITABLE: Final = frozenset(f.name for f in fields(BusinessCenter)) - {"bc_id"}
_STORE_EDITABLE: Final = frozenset(
    {
        "store_name",
        "store_code",
        "store_status",
        "store_role",
        "is_gmv_max_available",
        "thumbnail_url",
        "targeting_region_codes",
        "store_authorized_bc_id",
        "exclusive_advertiser_id",
        "catalog_id",
    }
)
_PRODUCT_EDITABLE: Final = frozenset(
    {
        "title",
        "product_image_url",
        "min_price",
        "max_price",
        "historical_sales",
        "category",
        "quantity",
        "status",
        "gmv_max_ads_status",
        "is_running_custom_shop_ads",
    }
)
_ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "status@advertiser": ADVERTISER_STATUSES,
    "role@advertiser": ADVERTISER_ROLES,
    "status@bc": BC_STATUSES,
    "type@bc": BC_TYPES,
    "store_status@store": STORE_STATUSES,
    "status@product": PRODUCT_STATUSES,
    "gmv_max_ads_status@product": GMV_MAX_ADS_STATUSES,
}


class World:
    """The whole simulated account tree, with reads for the API and admin mutations.

    Not thread-safe by itself: ``SandboxState`` serializes access with its lock.
    """

    def __init__(self, spec: WorldSpec) -> None:
        self.spec = spec
        self.business_centers: dict[str, BusinessCenter] = {}
        self.advertisers: dict[str, Advertiser] = {}
        self.stores: dict[str, Store] = {}
        self.revision = 0
        self._used_ids: set[str] = set()
        self._used_id_blocks: set[int] = set()
        self._rng = Random(derive_seed(spec.seed, "admin"))
        self._generated: OrderedDict[str, list[Product]] = OrderedDict()
        self._selections: OrderedDict[tuple[object, ...], list[Product]] = OrderedDict()
        self._cached_products = 0
        self.generated_cache_products = 100_000
        self.selection_cache_size = 1024

    @classmethod
    def generate(cls, spec: WorldSpec) -> World:
        """Build the world a spec describes."""
        world = cls(spec)
        world._populate(Random(derive_seed(spec.seed, "world")))
        world.revision = 0
        return world

    # -- generation -------------------------------------------------------------

    def _populate(self, rng: Random) -> None:
        spec = self.spec
        centers = [self._new_business_center(rng) for _ in range(spec.business_centers)]
        for index in range(spec.advertisers):
            owner = centers[index % len(centers)] if centers else None
            if rng.random() < spec.orphan_advertiser_share:
                owner = None
            advertiser = self._new_advertiser(rng, owner.bc_id if owner else None)
            if (
                owner
                and len(centers) > 1
                and rng.random() < spec.multi_bc_advertiser_share
            ):
                partner = rng.choice([c for c in centers if c.bc_id != owner.bc_id])
                advertiser.partner_bc_ids.append(partner.bc_id)
            for store_index in range(spec.stores_per_advertiser):
                self._new_store(
                    rng,
                    advertiser,
                    bc_id=self._store_bc_for(rng, advertiser, store_index, centers),
                    products=self._product_count(rng),
                )
        self._share_stores(rng)

    def _store_bc_for(
        self,
        rng: Random,
        advertiser: Advertiser,
        store_index: int,
        centers: list[BusinessCenter],
    ) -> str:
        reachable = advertiser.bc_ids
        if not reachable:
            return rng.choice(centers).bc_id
        return reachable[store_index % len(reachable)]

    def _product_count(self, rng: Random) -> int:
        spec = self.spec
        if not spec.product_count_jitter:
            return spec.products_per_store
        low = spec.products_per_store * (1 - spec.product_count_jitter)
        high = spec.products_per_store * (1 + spec.product_count_jitter)
        return max(0, round(rng.uniform(low, high)))

    def _share_stores(self, rng: Random) -> None:
        advertiser_ids = list(self.advertisers)
        if len(advertiser_ids) < 2:
            return
        for store in self.stores.values():
            if rng.random() >= self.spec.shared_store_share:
                continue
            other = rng.choice(advertiser_ids)
            if other not in store.advertiser_ids:
                store.advertiser_ids.append(other)
                self.advertisers[other].store_ids.append(store.store_id)

    def _mint_id(self, rng: Random, bounds: tuple[int, int]) -> str:
        while True:
            candidate = str(rng.randrange(*bounds))
            if candidate not in self._used_ids:
                self._used_ids.add(candidate)
                return candidate

    def _mint_id_block(self, rng: Random) -> int:
        while True:
            block = rng.randrange(1_000_000, 10_000_000)
            if block not in self._used_id_blocks:
                self._used_id_blocks.add(block)
                return block

    def _company(self, rng: Random) -> tuple[str, str]:
        brand = f"{rng.choice(_BRAND_HEADS)} {rng.choice(_BRAND_TAILS)}"
        return brand, f"{brand} {rng.choice(_LEGAL_FORMS)}"

    def _country(self, rng: Random) -> str:
        countries = list(_COUNTRY_WEIGHTS)
        return rng.choices(countries, weights=list(_COUNTRY_WEIGHTS.values()))[0]

    def _new_business_center(self, rng: Random, **overrides: Any) -> BusinessCenter:
        bc_id = self._mint_id(rng, _BC_ID_RANGE)
        brand, company = self._company(rng)
        country = self._country(rng)
        profile = COUNTRIES[country]
        center = BusinessCenter(
            bc_id=bc_id,
            name=f"{brand} BC",
            company=company,
            currency=profile.currency,
            registered_area=country,
            status="ENABLE",
            timezone=profile.display_timezone,
            type=rng.choice(
                ("AGENCY", "SELF_SERVICE", "NORMAL", "SELF_SERVICE_AGENCY")
            ),
            organization_type="STANDARD",
            verification_status=rng.choice(("VERIFIED", "VERIFIED", "NOT_SUBMITTED")),
            user_role="ADMIN",
            finance_role=rng.choice(("MANAGER", "ANALYST")),
            profile_image=f"{self.spec.image_base_url}/bc/{bc_id}.png",
        )
        center = _apply(center, overrides, _BC_EDITABLE, "bc")
        self.business_centers[bc_id] = center
        return center

    def _new_advertiser(
        self, rng: Random, owner_bc_id: str | None, **overrides: Any
    ) -> Advertiser:
        advertiser_id = self._mint_id(rng, _ADVERTISER_ID_RANGE)
        brand, company = self._company(rng)
        country = overrides.get("country") or (
            self.business_centers[owner_bc_id].registered_area
            if owner_bc_id
            else self._country(rng)
        )
        profile = COUNTRIES.get(country, COUNTRIES["US"])
        contact = rng.choice(_BRAND_HEADS)
        advertiser = Advertiser(
            advertiser_id=advertiser_id,
            name=f"{brand} {rng.choice(_ACCOUNT_SUFFIXES)}",
            company=company,
            status=rng.choices(
                (
                    "STATUS_ENABLE",
                    "STATUS_DISABLE",
                    "STATUS_LIMIT",
                    "STATUS_PENDING_CONFIRM",
                ),
                weights=(90, 4, 3, 3),
            )[0],
            role=rng.choices(("ROLE_ADVERTISER", "ROLE_CHILD_ADVERTISER"), (85, 15))[0],
            currency=profile.currency,
            timezone=profile.timezone,
            display_timezone=profile.display_timezone,
            country=country,
            industry=rng.choice(_INDUSTRIES),
            create_time=1_600_000_000 + rng.randrange(150_000_000),
            balance=round(rng.uniform(0, 20_000), 2),
            language=profile.language,
            email=f"{contact[0].lower()}***@***.com",
            contacter=f"{contact[:2]}****{contact[-2:]}",
            telephone_number=f"{profile.phone_prefix}******{rng.randrange(100):02d}",
            cellphone_number=f"{profile.phone_prefix}******{rng.randrange(100):02d}",
            address=f"{rng.randrange(1, 999)} {rng.choice(_BRAND_HEADS)} Street",
            description="",
            rejection_reason="",
            license_no=f"LIC{rng.randrange(10**8):08d}",
            license_url=f"{self.spec.image_base_url}/license/{advertiser_id}.png",
            company_name_editable=rng.random() < 0.2,
            owner_bc_id=owner_bc_id,
        )
        advertiser = _apply(advertiser, overrides, _ADVERTISER_EDITABLE, "advertiser")
        self.advertisers[advertiser_id] = advertiser
        return advertiser

    def _new_store(
        self,
        rng: Random,
        advertiser: Advertiser,
        *,
        bc_id: str,
        products: int,
        **overrides: Any,
    ) -> Store:
        if len(self._used_id_blocks) >= _MAX_STORES:
            raise InvalidChange("the world holds the most stores it can number")
        store_id = self._mint_id(rng, _STORE_ID_RANGE)
        profile = COUNTRIES.get(advertiser.country, COUNTRIES["US"])
        brand = advertiser.name.split(" ")[0]
        status = rng.choices(STORE_STATUSES, weights=(92, 5, 3))[0]
        available = status == "ACTIVE" and rng.random() < 0.9
        code_tail = "".join(rng.choice(_LETTERS) for _ in range(6))
        store = Store(
            store_id=store_id,
            id_block=self._mint_id_block(rng),
            store_name=f"{brand} {rng.choice(_STORE_SUFFIXES)}",
            store_type="TIKTOK_SHOP",
            store_code=f"{advertiser.country}LC{code_tail}",
            store_authorized_bc_id=bc_id,
            catalog_id=self._mint_id(rng, _CATALOG_ID_RANGE),
            targeting_region_codes=[advertiser.country],
            currency=profile.currency,
            store_status=status,
            store_role="AD_PROMOTION",
            is_gmv_max_available=available,
            thumbnail_url=f"{self.spec.image_base_url}/store/{store_id}.png",
            exclusive_advertiser_id=(
                advertiser.advertiser_id if available and rng.random() < 0.7 else None
            ),
            advertiser_ids=[advertiser.advertiser_id],
            product_seed=derive_seed(self.spec.seed, "products", store_id),
            generated_products=products,
            next_product_seq=products,
        )
        store = _apply(store, overrides, _STORE_EDITABLE, "store")
        self.stores[store_id] = store
        advertiser.store_ids.append(store_id)
        return store

    # -- products ---------------------------------------------------------------

    def products_of(self, store: Store) -> list[Product]:
        """The store's products in listing order (generated or materialized)."""
        if store.products is not None:
            return list(store.products.values())
        cached = self._generated.get(store.store_id)
        if cached is not None:
            self._generated.move_to_end(store.store_id)
            return cached
        generated = self._generate_products(store)
        self._generated[store.store_id] = generated
        self._cached_products += len(generated)
        while self._cached_products > self.generated_cache_products:
            _, evicted = self._generated.popitem(last=False)
            self._cached_products -= len(evicted)
        return generated

    def _forget_generated(self, store_id: str) -> list[Product] | None:
        generated = self._generated.pop(store_id, None)
        if generated is not None:
            self._cached_products -= len(generated)
        return generated

    def product_count(self, store: Store) -> int:
        """How many products the store has, without generating them."""
        if store.products is not None:
            return len(store.products)
        return store.generated_products

    def _generate_products(self, store: Store) -> list[Product]:
        rng = Random(store.product_seed)
        profile = _profile_for_currency(store.currency)
        return [
            self._make_product(rng, store, seq, profile)
            for seq in range(store.generated_products)
        ]

    def _make_product(
        self, rng: Random, store: Store, seq: int, profile: CountryProfile
    ) -> Product:
        item_group_id = f"{_PRODUCT_ID_PREFIX}{store.id_block:07d}{seq:08d}"
        category = _CATEGORY_NAMES[int(rng.random() * len(_CATEGORY_NAMES))]
        nouns = _CATEGORIES[category]
        title = (
            f"{_ADJECTIVES[int(rng.random() * len(_ADJECTIVES))]} "
            f"{nouns[int(rng.random() * len(nouns))]}"
            f"{_VARIANTS[int(rng.random() * len(_VARIANTS))]}"
        )
        base = 2.0 + rng.random() * 98.0
        spread = rng.random()
        top = base if spread < 0.6 else base * (1.0 + spread)
        quantity = int(rng.random() * 500)
        roll = rng.random()
        return Product(
            item_group_id=item_group_id,
            store_id=store.store_id,
            title=title,
            product_image_url=f"{self.spec.image_base_url}/product/{item_group_id}.jpeg",
            min_price=_price(base, profile),
            max_price=_price(top, profile),
            currency=store.currency,
            historical_sales=int(rng.expovariate(1 / 300)),
            category=category,
            quantity=quantity,
            status="NOT_AVAILABLE" if quantity == 0 or roll < 0.08 else "AVAILABLE",
            gmv_max_ads_status="OCCUPIED" if rng.random() < 0.15 else "UNOCCUPIED",
            is_running_custom_shop_ads=rng.random() < 0.1,
            salt=rng.getrandbits(32),
        )

    def is_eligible(self, product: Product, advertiser_key: str, kind: str) -> bool:
        """Whether ``advertiser_key`` may use the product for ``kind`` ads.

        ``advertiser_key`` is an advertiser id, or ``ALL_ADVERTISERS`` for the
        store-wide answer given when a request names no advertiser.
        """
        if product.eligibility:
            override = product.eligibility.get((advertiser_key, kind))
            if override is None:
                override = product.eligibility.get((ALL_ADVERTISERS, kind))
            if override is not None:
                return override
        if product.status != "AVAILABLE":
            return False
        return _eligible_by_hash(
            product.salt, eligibility_key(advertiser_key, kind), self._share(kind)
        )

    def _share(self, kind: str) -> float:
        if kind == GMV_MAX:
            return self.spec.gmv_max_eligible_share
        return self.spec.custom_shop_ads_eligible_share

    def select_products(self, store: Store, query: ProductQuery) -> list[Product]:
        """Products matching a query, in response order; cached per store version."""
        key = (store.store_id, store.version, query)
        cached = self._selections.get(key)
        if cached is not None:
            self._selections.move_to_end(key)
            return cached
        selected = self._select(store, query)
        self._selections[key] = selected
        if len(self._selections) > self.selection_cache_size:
            self._selections.popitem(last=False)
        return selected

    def _select(self, store: Store, query: ProductQuery) -> list[Product]:
        products = self.products_of(store)
        if query.item_group_ids:
            wanted = set(query.item_group_ids)
            products = [p for p in products if p.item_group_id in wanted]
        if query.product_name:
            needle = query.product_name.casefold()
            products = [p for p in products if needle in p.title.casefold()]
        if query.ad_creation_eligible:
            products = self._eligible_only(products, query)
        if query.sort_field == "min_price":
            products = sorted(
                products,
                key=lambda p: float(p.min_price),
                reverse=query.sort_type == "DESC",
            )
        elif query.sort_field == "historical_sales":
            products = sorted(
                products,
                key=lambda p: p.historical_sales,
                reverse=query.sort_type == "DESC",
            )
        return products

    def _eligible_only(
        self, products: list[Product], query: ProductQuery
    ) -> list[Product]:
        kind = query.ad_creation_eligible or GMV_MAX
        advertiser_key = query.advertiser_id or ALL_ADVERTISERS
        mixed = eligibility_key(advertiser_key, kind)
        share = self._share(kind)
        return [
            product
            for product in products
            if (
                self.is_eligible(product, advertiser_key, kind)
                if product.eligibility
                else product.status == "AVAILABLE"
                and _eligible_by_hash(product.salt, mixed, share)
            )
        ]

    # -- reads used by the API --------------------------------------------------

    def stores_of(self, advertiser_id: str) -> list[Store]:
        """Stores the advertiser can use, in the order they were linked."""
        advertiser = self.advertisers.get(advertiser_id)
        if advertiser is None:
            return []
        return [self.stores[store_id] for store_id in advertiser.store_ids]

    def business_center(self, bc_id: str) -> BusinessCenter:
        """The business center, or ``UnknownObject``."""
        center = self.business_centers.get(bc_id)
        if center is None:
            raise UnknownObject(f"no business center {bc_id}", bc_id=bc_id)
        return center

    def advertiser(self, advertiser_id: str) -> Advertiser:
        """The advertiser, or ``UnknownObject``."""
        advertiser = self.advertisers.get(advertiser_id)
        if advertiser is None:
            raise UnknownObject(
                f"no advertiser {advertiser_id}", advertiser_id=advertiser_id
            )
        return advertiser

    def store(self, store_id: str) -> Store:
        """The store, or ``UnknownObject``."""
        store = self.stores.get(store_id)
        if store is None:
            raise UnknownObject(f"no store {store_id}", store_id=store_id)
        return store

    def product(self, store_id: str, item_group_id: str) -> Product:
        """The product, or ``UnknownObject``; materializes the store."""
        products = self.materialize(self.store(store_id))
        product = products.get(item_group_id)
        if product is None:
            raise UnknownObject(
                f"no product {item_group_id} in store {store_id}",
                store_id=store_id,
                item_group_id=item_group_id,
            )
        return product

    def stats(self) -> dict[str, int]:
        """Object counts, without generating any product."""
        stores = self.stores.values()
        return {
            "business_centers": len(self.business_centers),
            "advertisers": len(self.advertisers),
            "orphan_advertisers": sum(
                1 for a in self.advertisers.values() if a.owner_bc_id is None
            ),
            "multi_bc_advertisers": sum(
                1 for a in self.advertisers.values() if len(a.bc_ids) > 1
            ),
            "stores": len(self.stores),
            "shared_stores": sum(1 for s in stores if len(s.advertiser_ids) > 1),
            "products": sum(self.product_count(s) for s in stores),
            "materialized_stores": sum(1 for s in stores if s.materialized),
            "revision": self.revision,
        }

    # -- mutations ---------------------------------------------------------------

    def _changed(self) -> None:
        self.revision += 1

    def add_business_center(self, **fields_: Any) -> BusinessCenter:
        """Create a business center; any ``bc/get`` field may be given."""
        center = self._new_business_center(self._rng, **fields_)
        self._changed()
        return center

    def update_business_center(self, bc_id: str, **changes: Any) -> BusinessCenter:
        """Change fields of a business center (name, status, company, ...)."""
        center = self.business_center(bc_id)
        updated = _apply(center, changes, _BC_EDITABLE, "bc")
        self.business_centers[bc_id] = updated
        self._changed()
        return updated

    def remove_business_center(self, bc_id: str) -> None:
        """Delete a business center no store is authorized through."""
        self.business_center(bc_id)
        users = [
            s.store_id
            for s in self.stores.values()
            if s.store_authorized_bc_id == bc_id
        ]
        if users:
            raise InvalidChange(
                "stores are authorized through this business center; move them first",
                bc_id=bc_id,
                store_ids=users,
            )
        for advertiser in self.advertisers.values():
            if advertiser.owner_bc_id == bc_id:
                advertiser.owner_bc_id = None
            if bc_id in advertiser.partner_bc_ids:
                advertiser.partner_bc_ids.remove(bc_id)
        del self.business_centers[bc_id]
        self._changed()

    def add_advertiser(
        self,
        *,
        owner_bc_id: str | None,
        partner_bc_ids: Iterable[str] = (),
        stores: int = 0,
        products_per_store: int | None = None,
        **fields_: Any,
    ) -> Advertiser:
        """Create an advertiser (optionally with new stores) under ``owner_bc_id``."""
        for bc_id in [owner_bc_id, *partner_bc_ids]:
            if bc_id is not None:
                self.business_center(bc_id)
        if stores and owner_bc_id is None and not partner_bc_ids:
            raise InvalidChange("stores of an orphan advertiser need a partner bc_id")
        advertiser = self._new_advertiser(self._rng, owner_bc_id, **fields_)
        advertiser.partner_bc_ids.extend(
            bc_id for bc_id in partner_bc_ids if bc_id != owner_bc_id
        )
        for _ in range(stores):
            self._new_store(
                self._rng,
                advertiser,
                bc_id=advertiser.bc_ids[0],
                products=(
                    self.spec.products_per_store
                    if products_per_store is None
                    else products_per_store
                ),
            )
        self._changed()
        return advertiser

    def update_advertiser(self, advertiser_id: str, **changes: Any) -> Advertiser:
        """Change ``advertiser/info`` fields (name, status, currency, ...)."""
        advertiser = self.advertiser(advertiser_id)
        updated = _apply(advertiser, changes, _ADVERTISER_EDITABLE, "advertiser")
        self.advertisers[advertiser_id] = updated
        self._changed()
        return updated

    def remove_advertiser(self, advertiser_id: str) -> None:
        """Delete an advertiser; stores only it could use disappear with it."""
        advertiser = self.advertiser(advertiser_id)
        for store_id in list(advertiser.store_ids):
            store = self.stores[store_id]
            store.advertiser_ids.remove(advertiser_id)
            if store.exclusive_advertiser_id == advertiser_id:
                store.exclusive_advertiser_id = None
            if not store.advertiser_ids:
                self._drop_store(store)
        del self.advertisers[advertiser_id]
        self._changed()

    def move_advertiser(
        self,
        advertiser_id: str,
        to_bc_id: str | None,
        *,
        keep_old_as_partner: bool = False,
    ) -> Advertiser:
        """Make ``to_bc_id`` the owner business center (``None`` orphans it)."""
        advertiser = self.advertiser(advertiser_id)
        if to_bc_id is not None:
            self.business_center(to_bc_id)
        old = advertiser.owner_bc_id
        advertiser.owner_bc_id = to_bc_id
        if to_bc_id in advertiser.partner_bc_ids:
            advertiser.partner_bc_ids.remove(to_bc_id)
        if keep_old_as_partner and old and old != to_bc_id:
            advertiser.partner_bc_ids.append(old)
        self._changed()
        return advertiser

    def set_partner_business_centers(
        self, advertiser_id: str, bc_ids: Iterable[str]
    ) -> Advertiser:
        """Replace the partner business centers of an advertiser."""
        advertiser = self.advertiser(advertiser_id)
        partners = []
        for bc_id in bc_ids:
            self.business_center(bc_id)
            if bc_id != advertiser.owner_bc_id and bc_id not in partners:
                partners.append(bc_id)
        advertiser.partner_bc_ids = partners
        self._changed()
        return advertiser

    def add_store(
        self,
        advertiser_id: str,
        *,
        store_authorized_bc_id: str | None = None,
        products: int | None = None,
        **fields_: Any,
    ) -> Store:
        """Create a store for an advertiser, authorized to its first BC by default."""
        advertiser = self.advertiser(advertiser_id)
        bc_id = store_authorized_bc_id or next(iter(advertiser.bc_ids), None)
        if bc_id is None:
            raise InvalidChange("give store_authorized_bc_id for an orphan advertiser")
        self.business_center(bc_id)
        count = self.spec.products_per_store if products is None else products
        if not 0 <= count < _MAX_PRODUCTS_PER_STORE:
            raise InvalidChange("products must be between 0 and 99,999,999")
        store = self._new_store(
            self._rng, advertiser, bc_id=bc_id, products=count, **fields_
        )
        self._changed()
        return store

    def update_store(self, store_id: str, **changes: Any) -> Store:
        """Change store fields (name, status, GMV Max availability, BC, ...)."""
        store = self.store(store_id)
        if changes.get("store_authorized_bc_id") is not None:
            self.business_center(changes["store_authorized_bc_id"])
        exclusive = changes.get("exclusive_advertiser_id")
        if exclusive is not None and exclusive not in store.advertiser_ids:
            raise InvalidChange(
                "the exclusive advertiser must be one of the store's advertisers",
                advertiser_id=exclusive,
            )
        updated = _apply(store, changes, _STORE_EDITABLE, "store")
        self.stores[store_id] = updated
        self._changed()
        return updated

    def remove_store(self, store_id: str) -> None:
        """Delete a store for every advertiser."""
        self._drop_store(self.store(store_id))
        self._changed()

    def _drop_store(self, store: Store) -> None:
        for advertiser_id in store.advertiser_ids:
            advertiser = self.advertisers.get(advertiser_id)
            if advertiser and store.store_id in advertiser.store_ids:
                advertiser.store_ids.remove(store.store_id)
        self._forget_generated(store.store_id)
        del self.stores[store.store_id]

    def link_store(self, store_id: str, advertiser_id: str) -> Store:
        """Let one more advertiser use a store."""
        store = self.store(store_id)
        advertiser = self.advertiser(advertiser_id)
        if advertiser_id not in store.advertiser_ids:
            store.advertiser_ids.append(advertiser_id)
            advertiser.store_ids.append(store_id)
            self._changed()
        return store

    def unlink_store(self, store_id: str, advertiser_id: str) -> Store:
        """Stop an advertiser from using a store (the store stays for the others)."""
        store = self.store(store_id)
        advertiser = self.advertiser(advertiser_id)
        if advertiser_id in store.advertiser_ids:
            store.advertiser_ids.remove(advertiser_id)
            advertiser.store_ids.remove(store_id)
            if store.exclusive_advertiser_id == advertiser_id:
                store.exclusive_advertiser_id = None
            self._changed()
        return store

    def materialize(self, store: Store) -> dict[str, Product]:
        """Turn the store's generated products into stored, mutable ones."""
        if store.products is None:
            generated = self._forget_generated(store.store_id)
            if generated is None:
                generated = self._generate_products(store)
            store.products = {p.item_group_id: p for p in generated}
            store.version += 1
        return store.products

    def add_product(self, store_id: str, **fields_: Any) -> Product:
        """Append a product to a store; unspecified fields are generated."""
        store = self.store(store_id)
        products = self.materialize(store)
        seq = store.next_product_seq
        if seq >= _MAX_PRODUCTS_PER_STORE:
            raise InvalidChange("the store holds the most products it can number")
        rng = Random(derive_seed(store.product_seed, "added", seq))
        product = self._make_product(
            rng, store, seq, _profile_for_currency(store.currency)
        )
        product = _apply(product, fields_, _PRODUCT_EDITABLE, "product")
        store.next_product_seq += 1
        products[product.item_group_id] = product
        store.version += 1
        self._changed()
        return product

    def update_product(
        self, store_id: str, item_group_id: str, **changes: Any
    ) -> Product:
        """Change product fields (title, prices, status, occupancy, ...)."""
        product = self.product(store_id, item_group_id)
        updated = _apply(product, changes, _PRODUCT_EDITABLE, "product")
        store = self.stores[store_id]
        assert store.products is not None
        store.products[item_group_id] = updated
        store.version += 1
        self._changed()
        return updated

    def remove_product(self, store_id: str, item_group_id: str) -> None:
        """Delete a product from a store."""
        self.product(store_id, item_group_id)
        store = self.stores[store_id]
        assert store.products is not None
        del store.products[item_group_id]
        store.version += 1
        self._changed()

    def set_eligibility(
        self,
        store_id: str,
        item_group_id: str,
        *,
        ad_creation_eligible: str,
        eligible: bool | None,
        advertiser_id: str | None = None,
    ) -> Product:
        """Force (or with ``None`` clear) a product's eligibility for one kind.

        Without ``advertiser_id`` the override applies to every advertiser that has
        no override of its own.
        """
        if ad_creation_eligible not in AD_CREATION_KINDS:
            raise InvalidChange(
                "ad_creation_eligible must be GMV_MAX or CUSTOM_SHOP_ADS",
                ad_creation_eligible=ad_creation_eligible,
            )
        product = self.product(store_id, item_group_id)
        key = (advertiser_id or ALL_ADVERTISERS, ad_creation_eligible)
        if eligible is None:
            product.eligibility.pop(key, None)
        else:
            product.eligibility[key] = eligible
        self.stores[store_id].version += 1
        self._changed()
        return product


def _eligible_by_hash(salt: int, advertiser_key: int, share: float) -> bool:
    mixed = ((salt ^ advertiser_key) * 2_654_435_761) & 0xFFFFFFFF
    return (mixed >> 8) % 1000 < share * 1000


def _price(amount: float, profile: CountryProfile) -> str:
    scaled = amount * profile.price_scale
    if profile.price_decimals == 0:
        return str(int(round(scaled, -2)) or 100)
    return f"{int(scaled) + 0.99:.2f}"


def _profile_for_currency(currency: str) -> CountryProfile:
    for profile in COUNTRIES.values():
        if profile.currency == currency:
            return profile
    return COUNTRIES["US"]


def _apply(obj: _T, changes: dict[str, Any], editable: frozenset[str], kind: str) -> _T:
    unknown = sorted(set(changes) - editable)
    if unknown:
        raise InvalidChange(
            f"cannot set {', '.join(unknown)} on a {kind}", fields=unknown
        )
    for name, value in changes.items():
        allowed = _ENUMS.get(f"{name}@{kind}")
        if allowed is not None and value not in allowed:
            raise InvalidChange(
                f"{name} must be one of {', '.join(allowed)}", field=name, value=value
            )
    if not changes:
        return obj
    return replace(obj, **changes)  # type: ignore[type-var]
