"""API sources (Garmin Connect, Strava): fetch, normalise, and hand records to ingest.

Nothing here imports ``garminconnect`` or ``stravalib`` at module level: the
clients cost 0.2 s and 0.8 s to import, and a sync that is skipped (synced
within the hour) must not pay for them.

A new source is one folder (a package defining an object that satisfies
``protocol.Source``) and one line in ``registry.SOURCES``.

- ``registry``: the sources, one line each ("module:attribute"); imports nothing.
- ``protocol``: ``Source`` (configured?, resume, normalise, has HR, login) and ``Session``; ``get_source``.
- ``sync``: ``sync``: per source, skip or fetch, normalise, then merge or only bookkeeping.
- ``backfill``: ``backfill-hr``: per-km HR splits for activities without them, in saved batches.
- ``sync_state``: what a source remembers between runs (state file, payload digests) and the skip rule.
- ``report``: ``StepReport``, one source's line of the sync report.
- ``retry``: the one retry rule of every source (tenacity; the server's Retry-After, else doubling).
- ``http``: request counting and the ``RateLimited`` failure.
- ``fields``: typed readers of payload fields and the schema check of a record built from them.
- ``login``: the ``Prompter`` a login asks through, and ``LoginResult``.
- ``tokens``: token files: 0600, outside tracking/ and backups/, written atomically.
- ``garmin/``: ``payloads`` (pure readers of every era), ``client`` (endpoints, session), ``login`` (the steps).
- ``strava/``: ``payloads`` (pure readers), ``budget`` (rate-limit headers, resets), ``client`` (session),
  ``oauth`` (consent callback, code exchange, the steps).
"""
