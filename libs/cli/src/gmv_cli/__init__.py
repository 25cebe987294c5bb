"""gmv_cli."""
