"""The sport vocabulary: each source's names for the common sports, and which sports may be one workout."""

from __future__ import annotations

import csv
import json

import pytest

from healthcache.model import sports
from healthcache.model.sports import FAMILY, SPORTS, TABLES, compatible, normalise_sport
from tests.test_merge_payloads import CORPUS

# (source, name as the source writes it, normalised sport)
TABLE = [
    # Garmin Connect activityType.typeKey
    ("garmin", "running", "running"),
    ("garmin", "street_running", "running"),
    ("garmin", "treadmill_running", "treadmill_running"),
    ("garmin", "trail_running", "trail_running"),
    ("garmin", "road_biking", "cycling"),
    ("garmin", "indoor_cycling", "indoor_cycling"),
    ("garmin", "virtual_ride", "virtual_cycling"),
    ("garmin", "mountain_biking", "mountain_biking"),
    ("garmin", "lap_swimming", "pool_swimming"),
    ("garmin", "open_water_swimming", "open_water_swimming"),
    ("garmin", "walking", "walking"),
    ("garmin", "hiking", "hiking"),
    ("garmin", "strength_training", "strength"),
    ("garmin", "indoor_rowing", "indoor_rowing"),
    ("garmin", "resort_skiing_snowboarding_ws", "skiing"),
    ("garmin", "cross_country_skiing_ws", "cross_country_skiing"),
    ("garmin", "yoga", "yoga"),
    ("garmin", "indoor_cardio", "other"),
    ("garmin_export", "lap_swimming", "pool_swimming"),
    # Strava sport_type (API) and Activity Type (account export, with spaces)
    ("strava", "Run", "running"),
    ("strava", "TrailRun", "trail_running"),
    ("strava", "VirtualRun", "treadmill_running"),
    ("strava", "Ride", "cycling"),
    ("strava", "VirtualRide", "virtual_cycling"),
    ("strava", "MountainBikeRide", "mountain_biking"),
    ("strava", "Swim", "swimming"),
    ("strava", "Walk", "walking"),
    ("strava", "Hike", "hiking"),
    ("strava", "WeightTraining", "strength"),
    ("strava", "Rowing", "rowing"),
    ("strava", "AlpineSki", "skiing"),
    ("strava", "NordicSki", "cross_country_skiing"),
    ("strava_export", "Nordic Ski", "cross_country_skiing"),
    ("strava_export", "Alpine Ski", "skiing"),
    ("strava_export", "Canoe", "paddling"),
    ("strava", "Yoga", "yoga"),
    ("strava", "Workout", "other"),
    # FIT session sport / sub_sport
    ("fit", "running", "running"),
    ("fit", "running/generic", "running"),
    ("fit", "running/treadmill", "treadmill_running"),
    ("fit", "running/trail", "trail_running"),
    ("fit", "cycling/generic", "cycling"),
    ("fit", "cycling/indoor_cycling", "indoor_cycling"),
    ("fit", "cycling/virtual_activity", "virtual_cycling"),
    ("fit", "cycling/commuting", "cycling"),
    ("fit", "swimming/lap_swimming", "pool_swimming"),
    ("fit", "swimming/open_water", "open_water_swimming"),
    ("fit", "walking/generic", "walking"),
    ("fit", "hiking", "hiking"),
    ("fit", "training/strength_training", "strength"),
    ("fit", "fitness_equipment/indoor_rowing", "indoor_rowing"),
    ("fit", "rowing", "rowing"),
    ("fit", "alpine_skiing", "skiing"),
    ("fit", "cross_country_skiing", "cross_country_skiing"),
    ("fit", "training/yoga", "yoga"),
    ("fit", "generic", "other"),
    ("fit", "transition/generic", "other"),
    # Apple Health HKWorkoutActivityType (with or without the prefix, indoor/pool as a suffix)
    ("apple_health", "HKWorkoutActivityTypeRunning", "running"),
    ("apple_health", "HKWorkoutActivityTypeRunning/indoor", "treadmill_running"),
    ("apple_health", "HKWorkoutActivityTypeCycling", "cycling"),
    ("apple_health", "HKWorkoutActivityTypeCycling/indoor", "indoor_cycling"),
    ("apple_health", "HKWorkoutActivityTypeSwimming/pool", "pool_swimming"),
    ("apple_health", "HKWorkoutActivityTypeSwimming/open_water", "open_water_swimming"),
    ("apple_health", "HKWorkoutActivityTypeWalking", "walking"),
    ("apple_health", "HKWorkoutActivityTypeHiking", "hiking"),
    ("apple_health", "HKWorkoutActivityTypeTraditionalStrengthTraining", "strength"),
    ("apple_health", "FunctionalStrengthTraining", "strength"),
    ("apple_health", "HKWorkoutActivityTypeRowing", "rowing"),
    ("apple_health", "HKWorkoutActivityTypeDownhillSkiing", "skiing"),
    ("apple_health", "HKWorkoutActivityTypeCrossCountrySkiing", "cross_country_skiing"),
    ("apple_health", "HKWorkoutActivityTypeYoga", "yoga"),
    ("apple_health", "HKWorkoutActivityTypeOther", "other"),
    # Polar Flow sport names
    ("polar", "RUNNING", "running"),
    ("polar", "TRAIL_RUNNING", "trail_running"),
    ("polar", "TREADMILL_RUNNING", "treadmill_running"),
    ("polar", "ROAD_BIKING", "cycling"),
    ("polar", "INDOOR_CYCLING", "indoor_cycling"),
    ("polar", "POOL_SWIMMING", "pool_swimming"),
    ("polar", "OPEN_WATER_SWIMMING", "open_water_swimming"),
    ("polar", "WALKING", "walking"),
    ("polar", "HIKING", "hiking"),
    ("polar", "STRENGTH_TRAINING", "strength"),
    ("polar", "INDOOR_ROWING", "indoor_rowing"),
    ("polar", "DOWNHILL_SKIING", "skiing"),
    ("polar", "CROSS-COUNTRY_SKIING", "cross_country_skiing"),
    ("polar", "YOGA", "yoga"),
    ("polar", "OTHER_OUTDOOR", "other"),
    # Files
    ("tcx", "Biking", "cycling"),
    ("tcx", "Running", "running"),
    ("gpx", "9", "running"),
    ("gpx", "16", "swimming"),
    ("gpx", "cycling", "cycling"),
    # Unknown names and missing values
    ("garmin", "underwater_basket_weaving", "other"),
    ("nosuchsource", "running", "running"),
    ("strava", None, "other"),
    ("strava", "", "other"),
]


@pytest.mark.parametrize(("source", "raw", "sport"), TABLE)
def test_table(source: str, raw: str | None, sport: str) -> None:
    assert normalise_sport(source, raw) == sport


def test_every_table_maps_into_the_vocabulary() -> None:
    for table in TABLES.values():
        assert set(table.values()) <= SPORTS
    assert set(FAMILY) <= SPORTS and set(FAMILY.values()) <= SPORTS


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("running", "treadmill_running", True),
        ("trail_running", "running", True),
        ("cycling", "virtual_cycling", True),
        ("indoor_cycling", "mountain_biking", True),
        ("pool_swimming", "swimming", True),
        ("walking", "hiking", True),
        ("rowing", "indoor_rowing", True),
        ("skiing", "cross_country_skiing", True),
        ("other", "other", True),
        ("other", "cycling", False),  # an unknown sport is no wildcard
        ("strength", "other", False),
        ("running", "cycling", False),
        ("running", "walking", False),
        ("swimming", "rowing", False),
        ("strength", "yoga", False),
    ],
)
def test_compatible(a: str, b: str, same: bool) -> None:
    assert compatible(a, b) is same and compatible(b, a) is same


def test_every_sport_of_the_corpus_exports_is_known() -> None:
    """The names real account exports use map to a sport (not 'other' by accident)."""
    csvs = sorted((CORPUS / "strava_export").glob("*.csv"))
    garmin = CORPUS / "garmin_export" / "blue-az__HRM-Dash__summarizedActivities.json"
    if not csvs or not garmin.exists():
        pytest.skip("corpus not present")
    for path in csvs:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        col = rows[0].index("Activity Type")
        names = {r[col] for r in rows[1:] if r[col]} - {"Sail", "Workout"}  # no sport of ours for sailing
        assert {
            n: normalise_sport("strava_export", n) for n in names if normalise_sport("strava_export", n) == "other"
        } == {}
    types = {a["activityType"] for a in json.loads(garmin.read_text())[0]["summarizedActivitiesExport"]}
    assert {t: normalise_sport("garmin_export", t) for t in types} == {
        "indoor_cardio": "other",
        "other": "other",
        "cycling": "cycling",
        "walking": "walking",
    }


def test_lookup_is_case_and_space_insensitive() -> None:
    assert sports.normalise_sport("strava", "  trail run ") == "trail_running"
