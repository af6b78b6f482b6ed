"""Tests of the webhook cores: events, signing, target safety, sending, backoff."""
