"""The database: SQLAlchemy models, the engine and session factory, Alembic from code, and the
queries that move the engine's frames in and out."""
