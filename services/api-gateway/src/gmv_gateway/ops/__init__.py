"""Health, readiness and Prometheus metrics of the gateway."""
