"""Tests of the HTTP API, through httpx against the app in each of its modes."""
