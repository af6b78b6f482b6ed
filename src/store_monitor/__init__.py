"""Uptime and downtime of restaurants within their business hours."""
