"""API sources (Garmin Connect, Strava): fetch, normalise, and hand records to ingest.

Nothing here imports ``garminconnect`` or ``stravalib`` at module level: the
clients cost 0.2 s and 0.8 s to import, and a sync that is skipped (synced
within the hour) must not pay for them.
"""
