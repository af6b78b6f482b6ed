"""Tests of the data layer (migrations, ingest, report data) on Postgres."""
