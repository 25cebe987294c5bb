"""The metrics table of docs/operations.md names every metric the services export."""

from __future__ import annotations

import importlib
import re

from doc_commands import ROOT
from prometheus_client import REGISTRY

OPERATIONS = ROOT / "docs" / "operations.md"
# Every module that defines metrics is imported by one of these (the Kafka bus is imported
# only when a process uses it).
SERVICE_MODULES = (
    "gmv_common.bus.kafka",
    "gmv_gateway.app",
    "gmv_metadata_sync.app",
    "gmv_product_sync.app",
    "gmv_options_cache.app",
)
ROW = re.compile(r"^\| `(gmv_[a-z_]+)` \| (counter|gauge|histogram) \|", re.MULTILINE)


def documented() -> dict[str, str]:
    return dict(ROW.findall(OPERATIONS.read_text()))


def exported() -> dict[str, str]:
    for module in SERVICE_MODULES:
        importlib.import_module(module)
    found = {}
    for family in REGISTRY.collect():
        if family.name.startswith("gmv_"):
            found[family.name] = family.type
    return found


def test_every_exported_metric_is_documented_with_its_type() -> None:
    table = documented()
    # A counter's family drops the ``_total`` its code name may end with.
    named = {name.removesuffix("_total"): kind for name, kind in table.items()}

    assert named == exported()
    assert len(named) == len(table)
