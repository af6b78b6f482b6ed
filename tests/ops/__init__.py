"""Tests of the operations surface: metrics, request ids, structured logs, graceful shutdown."""
