"""The hub store: the SQLAlchemy base and engine, the Alembic migrations, and the store's small
query helpers."""
