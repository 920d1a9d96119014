"""The store: SQLAlchemy models, migrations, and the queries the rest of the dialer uses."""
