"""gmv_metadata_sync."""
