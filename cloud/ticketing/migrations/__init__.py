"""Alembic migrations of the ticketing database (run by ``cloud.ticketing.db.migrate``)."""
