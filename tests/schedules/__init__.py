"""Tests of reports on a schedule: the cron rules, firing from the sweep, the routes and page."""
