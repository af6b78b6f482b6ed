"""Tests of report jobs: the job body, the Arq worker (real Redis and Postgres), orphans."""
