"""SQL mirrors of the cache: SQLite (built in) and PostgreSQL (psycopg, loaded only when used)."""
