"""The sport vocabulary: every source's sport names mapped onto one set of names.

Mappings are data (one dict per source) so a new name is one line, and lookups
are case-insensitive.  Unknown names become ``other``; the raw name is always
kept beside the normalised one (``sport_raw``).
"""

from __future__ import annotations

SPORTS: frozenset[str] = frozenset(
    {
        "running",
        "trail_running",
        "treadmill_running",
        "cycling",
        "indoor_cycling",
        "virtual_cycling",
        "mountain_biking",
        "swimming",
        "pool_swimming",
        "open_water_swimming",
        "walking",
        "hiking",
        "strength",
        "rowing",
        "indoor_rowing",
        "skiing",
        "cross_country_skiing",
        "yoga",
        "multisport",
        "paddling",
        "other",
    }
)

# Sports that count as the same workout family for de-duplication.
FAMILY: dict[str, str] = {
    "running": "running",
    "trail_running": "running",
    "treadmill_running": "running",
    "cycling": "cycling",
    "indoor_cycling": "cycling",
    "virtual_cycling": "cycling",
    "mountain_biking": "cycling",
    "swimming": "swimming",
    "pool_swimming": "swimming",
    "open_water_swimming": "swimming",
    "walking": "walking",
    "hiking": "walking",
    "rowing": "rowing",
    "indoor_rowing": "rowing",
    "skiing": "skiing",
    "cross_country_skiing": "skiing",
}

GARMIN: dict[str, str] = {
    "running": "running",
    "street_running": "running",
    "track_running": "running",
    "trail_running": "trail_running",
    "treadmill_running": "treadmill_running",
    "indoor_running": "treadmill_running",
    "virtual_run": "treadmill_running",
    "cycling": "cycling",
    "road_biking": "cycling",
    "gravel_cycling": "cycling",
    "mountain_biking": "mountain_biking",
    "indoor_cycling": "indoor_cycling",
    "virtual_ride": "virtual_cycling",
    "e_bike_fitness": "cycling",
    "lap_swimming": "pool_swimming",
    "open_water_swimming": "open_water_swimming",
    "swimming": "swimming",
    "walking": "walking",
    "casual_walking": "walking",
    "speed_walking": "walking",
    "hiking": "hiking",
    "strength_training": "strength",
    "indoor_rowing": "indoor_rowing",
    "rowing": "rowing",
    "resort_skiing_snowboarding_ws": "skiing",
    "resort_skiing": "skiing",
    "backcountry_skiing": "skiing",
    "cross_country_skiing_ws": "cross_country_skiing",
    "skate_skiing_ws": "cross_country_skiing",
    "yoga": "yoga",
    "multi_sport": "multisport",
    "stand_up_paddleboarding": "paddling",
    "kayaking": "paddling",
}

STRAVA: dict[str, str] = {
    "run": "running",
    "trailrun": "trail_running",
    "virtualrun": "treadmill_running",
    "ride": "cycling",
    "gravelride": "cycling",
    "mountainbikeride": "mountain_biking",
    "emountainbikeride": "mountain_biking",
    "ebikeride": "cycling",
    "virtualride": "virtual_cycling",
    "velomobile": "cycling",
    "handcycle": "cycling",
    "swim": "swimming",
    "walk": "walking",
    "hike": "hiking",
    "weighttraining": "strength",
    "workout": "other",
    "crossfit": "strength",
    "rowing": "rowing",
    "virtualrow": "indoor_rowing",
    "alpineski": "skiing",
    "backcountryski": "skiing",
    "nordicski": "cross_country_skiing",
    "snowboard": "skiing",
    "yoga": "yoga",
    "standuppaddling": "paddling",
    "kayaking": "paddling",
    "canoeing": "paddling",
}

# FIT sport (and "sport/sub_sport" for the sub-sports that change the meaning).
FIT: dict[str, str] = {
    "running": "running",
    "running/treadmill": "treadmill_running",
    "running/trail": "trail_running",
    "running/indoor_running": "treadmill_running",
    "running/virtual_activity": "treadmill_running",
    "cycling": "cycling",
    "cycling/indoor_cycling": "indoor_cycling",
    "cycling/virtual_activity": "virtual_cycling",
    "cycling/mountain": "mountain_biking",
    "cycling/spin": "indoor_cycling",
    "swimming": "swimming",
    "swimming/lap_swimming": "pool_swimming",
    "swimming/open_water": "open_water_swimming",
    "walking": "walking",
    "hiking": "hiking",
    "training": "strength",
    "training/strength_training": "strength",
    "training/yoga": "yoga",
    "rowing": "rowing",
    "rowing/indoor_rowing": "indoor_rowing",
    "fitness_equipment/indoor_rowing": "indoor_rowing",
    "fitness_equipment/treadmill": "treadmill_running",
    "fitness_equipment/indoor_cycling": "indoor_cycling",
    "alpine_skiing": "skiing",
    "cross_country_skiing": "cross_country_skiing",
    "multisport": "multisport",
    "stand_up_paddleboarding": "paddling",
    "paddling": "paddling",
    "kayaking": "paddling",
}

APPLE_HEALTH: dict[str, str] = {
    "hkworkoutactivitytyperunning": "running",
    "hkworkoutactivitytypecycling": "cycling",
    "hkworkoutactivitytypeswimming": "swimming",
    "hkworkoutactivitytypewalking": "walking",
    "hkworkoutactivitytypehiking": "hiking",
    "hkworkoutactivitytypetraditionalstrengthtraining": "strength",
    "hkworkoutactivitytypefunctionalstrengthtraining": "strength",
    "hkworkoutactivitytyperowing": "rowing",
    "hkworkoutactivitytypedownhillskiing": "skiing",
    "hkworkoutactivitytypecrosscountryskiing": "cross_country_skiing",
    "hkworkoutactivitytypeyoga": "yoga",
    "hkworkoutactivitytypepaddlesports": "paddling",
}

POLAR: dict[str, str] = {
    "running": "running",
    "trail_running": "trail_running",
    "treadmill_running": "treadmill_running",
    "road_running": "running",
    "cycling": "cycling",
    "road_biking": "cycling",
    "mountain_biking": "mountain_biking",
    "indoor_cycling": "indoor_cycling",
    "swimming": "swimming",
    "pool_swimming": "pool_swimming",
    "open_water_swimming": "open_water_swimming",
    "walking": "walking",
    "hiking": "hiking",
    "strength_training": "strength",
    "rowing": "rowing",
    "indoor_rowing": "indoor_rowing",
    "downhill_skiing": "skiing",
    "cross-country_skiing": "cross_country_skiing",
    "yoga": "yoga",
}

TABLES: dict[str, dict[str, str]] = {
    "garmin": GARMIN,
    "garmin_export": GARMIN,
    "strava": STRAVA,
    "strava_export": STRAVA,
    "fit": FIT,
    "gpx": STRAVA,
    "tcx": STRAVA,
    "apple_health": APPLE_HEALTH,
    "polar": POLAR,
}


def normalise_sport(source: str, raw: str | None) -> str:
    """Map a source's sport name (FIT: "sport" or "sport/sub_sport") to the vocabulary."""
    if not raw:
        return "other"
    key = raw.strip().lower().replace(" ", "_")
    table = TABLES.get(source, {})
    for candidate in (key, key.split("/", 1)[0], key.replace("_", "")):
        if candidate in table:
            return table[candidate]
        if candidate in SPORTS:
            return candidate
    return "other"


def family(sport: str) -> str:
    return FAMILY.get(sport, sport)


def compatible(a: str, b: str) -> bool:
    """Two sports may be the same workout: same family, or either side unknown."""
    return a == "other" or b == "other" or family(a) == family(b)
