"""gmv_options_cache."""
