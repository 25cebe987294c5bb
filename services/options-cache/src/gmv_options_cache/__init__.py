"""The options cache: each binding's GMV Max options document with a strong ETag.

The gateway serves documents with ``load_options``; the consumer (``app.run``), the
``gmv options rebuild`` command and tests build them with ``rebuild_options``.
"""

from gmv_options_cache.schemas import OptionsDocument, RebuildResult, StoredOptions
from gmv_options_cache.service import load_options, rebuild_options

__all__ = [
    "OptionsDocument",
    "RebuildResult",
    "StoredOptions",
    "load_options",
    "rebuild_options",
]
