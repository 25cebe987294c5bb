"""gmv_product_sync."""
