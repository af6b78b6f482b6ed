"""Tests of the pure report engine against the report contract."""
