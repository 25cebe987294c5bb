"""gmv_common."""
