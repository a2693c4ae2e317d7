"""The import pipeline's registries and decisions: formats as data, one open-or-skip rule, one normaliser each."""

from __future__ import annotations

import pytest

from healthcache import normalise
from healthcache.importers import garmin_export, strava_export
from healthcache.importers.base import ImportFailed

# ---------------------------------------------------------------- normalisers


@pytest.mark.parametrize(
    ("module", "source", "payload"),
    [
        (garmin_export, "garmin", {"activityId": 1, "startTimeGMT": "2024-05-01 06:00:00"}),
        (strava_export, "strava", {"id": 1, "start_date": "2024-05-01T06:00:00Z", "type": "Run"}),
    ],
)
def test_an_export_has_no_fallback_normaliser(
    monkeypatch: pytest.MonkeyPatch, module: object, source: str, payload: dict[str, object]
) -> None:
    """An account export's records are the API normaliser's: with that one gone, the export fails loudly
    instead of quietly falling back to a mapping of its own that sync and rebuild would never use."""
    monkeypatch.setitem(normalise.NORMALISERS, source, "healthcache.nowhere:normalise_activity")
    with pytest.raises((ImportFailed, ImportError)):
        module.to_record(payload)  # type: ignore[attr-defined]
