"""gmv_sandbox."""
