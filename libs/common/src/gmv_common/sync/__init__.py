"""Sync runs shared by the gateway, the schedulers and the workers: requests, guards and leases."""
