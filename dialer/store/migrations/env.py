"""Alembic environment: runs migrations on the engine the dialer hands over."""

from __future__ import annotations

from alembic import context

from dialer.store.models import Base

config = context.config
engine = config.attributes["engine"]
sqlite = engine.dialect.name == "sqlite"

with engine.connect() as connection:
    if sqlite:
        # Batch migrations copy tables; with foreign keys on, dropping the old copy checks
        # every child row against it (quadratic on a large store). Off during migrations only;
        # it must be set outside a transaction to take effect.
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if sqlite:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
