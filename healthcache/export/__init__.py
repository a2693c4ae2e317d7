"""SQL mirrors of the cache: SQLite (built in) and PostgreSQL (psycopg, loaded only when used).

- ``core``: ``export()`` reads the cache, plans, and applies the plan through one write path;
  ``run_configured_exports`` after a sync or import.
- ``plan``: the pure decisions: schema action, what to send, orphans to mark, rows to delete.
- ``mirror``: the ``Mirror`` protocol the engines implement, and the types both sides share.
- ``tables``: the schema, declared once as data; each engine's DDL and the rows come from it.
- ``sqlite``, ``postgres``: the engines; they import only ``mirror`` and ``tables``.
- ``targets``: a target spec parsed, its engine loaded when it is opened.
- ``report``: what one export did, for people and for ``--json``.
"""
