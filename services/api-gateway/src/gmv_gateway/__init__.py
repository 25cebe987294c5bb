"""gmv_gateway."""
