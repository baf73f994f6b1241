"""The SQLite store: schema, migrations and one module per table family."""
