"""The metadata sync service: business centers, advertisers and stores of each binding.

Entry points: ``gmv_metadata_sync.app.run`` (the service), ``ensure_meta_schedule`` (for
the gateway's OAuth callback), ``gmv_metadata_sync.cli.repair_app`` (``gmv repair``).
"""

from gmv_metadata_sync.service import ensure_meta_schedule

__all__ = ["ensure_meta_schedule"]
