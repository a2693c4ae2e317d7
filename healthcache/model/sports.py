"""The sport vocabulary: every source's sport names mapped onto one set of names.

Mappings are data (one dict per source) so a new name is one line, and lookups
are case-insensitive.  Garmin's versioned type keys (``stand_up_paddleboarding_v2``)
are read without the version, and a Garmin key still unknown falls back to its
``parentTypeId``.  Unknown names become ``other``; the raw name is always kept
beside the normalised one (``sport_raw``).  ``other`` is a sport like any
other for de-duplication: it matches only ``other``, never any workout.
"""

from __future__ import annotations

import re

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
        "unspecified",
    }
)

# A sport the format cannot name: TCX knows only Running, Biking and Other, so a TCX
# "Other" says "neither running nor cycling" (a pool swim's TCX export says Other).
# It is a constraint, not an unknown: compatible with every sport but those excluded.
UNSPECIFIED = "unspecified"
UNSPECIFIED_EXCLUDES: frozenset[str] = frozenset({"running", "cycling"})

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

# Garmin Connect activityType.typeKey (API and account export).
GARMIN: dict[str, str] = {
    "running": "running",
    "street_running": "running",
    "track_running": "running",
    "ultra_run": "running",
    "obstacle_run": "trail_running",
    "trail_running": "trail_running",
    "treadmill_running": "treadmill_running",
    "indoor_running": "treadmill_running",
    "virtual_run": "treadmill_running",
    "cycling": "cycling",
    "road_biking": "cycling",
    "gravel_cycling": "cycling",
    "cyclocross": "cycling",
    "track_cycling": "cycling",
    "recumbent_cycling": "cycling",
    "hand_cycling": "cycling",
    "e_bike_fitness": "cycling",
    "bmx": "cycling",
    "mountain_biking": "mountain_biking",
    "downhill_biking": "mountain_biking",
    "e_bike_mountain": "mountain_biking",
    "indoor_cycling": "indoor_cycling",
    "virtual_ride": "virtual_cycling",
    "lap_swimming": "pool_swimming",
    "open_water_swimming": "open_water_swimming",
    "swimming": "swimming",
    "walking": "walking",
    "casual_walking": "walking",
    "speed_walking": "walking",
    "indoor_walking": "walking",
    "hiking": "hiking",
    "mountaineering": "hiking",
    "snow_shoe_ws": "hiking",
    "strength_training": "strength",
    "indoor_rowing": "indoor_rowing",
    "rowing": "rowing",
    "resort_skiing_snowboarding_ws": "skiing",
    "resort_skiing": "skiing",
    "resort_snowboarding": "skiing",
    "backcountry_skiing_snowboarding_ws": "skiing",
    "backcountry_skiing": "skiing",
    "cross_country_skiing_ws": "cross_country_skiing",
    "skate_skiing_ws": "cross_country_skiing",
    "yoga": "yoga",
    "breathwork": "yoga",  # a mind-and-body session (parent type 4, "other"), as Apple's MindAndBody
    "meditation": "yoga",
    "multi_sport": "multisport",
    "stand_up_paddleboarding": "paddling",
    "stand_up_paddleboarding_ws": "paddling",
    "kayaking": "paddling",
    "kayaking_ws": "paddling",
    "indoor_cardio": "other",
    "hiit": "other",
    "fitness_equipment": "other",
    "other": "other",
}

# Garmin's activityType.parentTypeId -> sport, for a typeKey no table knows (ids of
# Connect's own type tree, as its activity lists send them: running 1, cycling 2,
# hiking 3, walking 9, swimming 26).  17 ("all") and 4 ("other") say nothing.
GARMIN_PARENTS: dict[int, str] = {1: "running", 2: "cycling", 3: "hiking", 9: "walking", 26: "swimming"}

# Garmin appends a version to type keys it redefines ("stand_up_paddleboarding_v2").
_VERSION = re.compile(r"_v\d+$")

# Strava sport_type (and the older ``type``; the account export writes them with spaces).
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
    "snowshoe": "hiking",
    "weighttraining": "strength",
    "crossfit": "strength",
    "workout": "other",
    "highintensityintervaltraining": "other",
    "elliptical": "other",
    "stairstepper": "other",
    "rowing": "rowing",
    "virtualrow": "indoor_rowing",
    "alpineski": "skiing",
    "backcountryski": "skiing",
    "snowboard": "skiing",
    "nordicski": "cross_country_skiing",
    "rollerski": "cross_country_skiing",
    "yoga": "yoga",
    "standuppaddling": "paddling",
    "kayaking": "paddling",
    "canoeing": "paddling",
    "canoe": "paddling",
}

# FIT session sport (and "sport/sub_sport" where the sub-sport changes the meaning).
FIT: dict[str, str] = {
    "generic": "other",
    "running": "running",
    "running/street": "running",
    "running/track": "running",
    "running/treadmill": "treadmill_running",
    "running/indoor_running": "treadmill_running",
    "running/virtual_activity": "treadmill_running",
    "running/trail": "trail_running",
    "running/obstacle": "trail_running",
    "cycling": "cycling",
    "cycling/road": "cycling",
    "cycling/gravel_cycling": "cycling",
    "cycling/cyclocross": "cycling",
    "cycling/commuting": "cycling",
    "cycling/indoor_cycling": "indoor_cycling",
    "cycling/spin": "indoor_cycling",
    "cycling/virtual_activity": "virtual_cycling",
    "cycling/mountain": "mountain_biking",
    "cycling/downhill": "mountain_biking",
    "cycling/e_bike_mountain": "mountain_biking",
    "e_biking": "cycling",
    "swimming": "swimming",
    "swimming/lap_swimming": "pool_swimming",
    "swimming/open_water": "open_water_swimming",
    "walking": "walking",
    "walking/indoor_walking": "walking",
    "hiking": "hiking",
    "mountaineering": "hiking",
    "snowshoeing": "hiking",
    "training": "strength",
    "training/strength_training": "strength",
    "training/yoga": "yoga",
    "training/pilates": "other",
    "training/cardio_training": "other",
    "training/flexibility_training": "other",
    "hiit": "other",
    "rowing": "rowing",
    "rowing/indoor_rowing": "indoor_rowing",
    "fitness_equipment": "other",
    "fitness_equipment/indoor_rowing": "indoor_rowing",
    "fitness_equipment/treadmill": "treadmill_running",
    "fitness_equipment/indoor_running": "treadmill_running",
    "fitness_equipment/indoor_cycling": "indoor_cycling",
    "fitness_equipment/strength_training": "strength",
    "fitness_equipment/yoga": "yoga",
    "alpine_skiing": "skiing",
    "snowboarding": "skiing",
    "cross_country_skiing": "cross_country_skiing",
    "cross_country_skiing/skate_skiing": "cross_country_skiing",
    "multisport": "multisport",
    "transition": "other",
    "stand_up_paddleboarding": "paddling",
    "paddling": "paddling",
    "kayaking": "paddling",
}

# Apple Health HKWorkoutActivityType names.  Apple keeps indoor/pool/open water in
# metadata (HKIndoorWorkout, HKSwimmingLocationType); an importer may append it as
# "/indoor", "/pool" or "/open_water", and the prefix may be left off.
APPLE_HEALTH: dict[str, str] = {
    "hkworkoutactivitytyperunning": "running",
    "hkworkoutactivitytyperunning/indoor": "treadmill_running",
    "hkworkoutactivitytypecycling": "cycling",
    "hkworkoutactivitytypecycling/indoor": "indoor_cycling",
    "hkworkoutactivitytypehandcycling": "cycling",
    "hkworkoutactivitytypeswimming": "swimming",
    "hkworkoutactivitytypeswimming/pool": "pool_swimming",
    "hkworkoutactivitytypeswimming/open_water": "open_water_swimming",
    "hkworkoutactivitytypewalking": "walking",
    "hkworkoutactivitytypewalking/indoor": "walking",
    "hkworkoutactivitytypehiking": "hiking",
    "hkworkoutactivitytypetraditionalstrengthtraining": "strength",
    "hkworkoutactivitytypefunctionalstrengthtraining": "strength",
    "hkworkoutactivitytypecrosstraining": "strength",
    "hkworkoutactivitytyperowing": "rowing",
    "hkworkoutactivitytyperowing/indoor": "indoor_rowing",
    "hkworkoutactivitytypedownhillskiing": "skiing",
    "hkworkoutactivitytypesnowboarding": "skiing",
    "hkworkoutactivitytypecrosscountryskiing": "cross_country_skiing",
    "hkworkoutactivitytypeyoga": "yoga",
    "hkworkoutactivitytypemindandbody": "yoga",
    "hkworkoutactivitytypepaddlesports": "paddling",
    "hkworkoutactivitytypeelliptical": "other",
    "hkworkoutactivitytypehighintensityintervaltraining": "other",
    "hkworkoutactivitytypemixedcardio": "other",
    "hkworkoutactivitytypeother": "other",
}

# Polar Flow sport names (account export and AccessLink ``detailed-sport-info``).
POLAR: dict[str, str] = {
    "running": "running",
    "road_running": "running",
    "trail_running": "trail_running",
    "treadmill_running": "treadmill_running",
    "cycling": "cycling",
    "road_biking": "cycling",
    "road_cycling": "cycling",
    "mountain_biking": "mountain_biking",
    "indoor_cycling": "indoor_cycling",
    "swimming": "swimming",
    "pool_swimming": "pool_swimming",
    "open_water_swimming": "open_water_swimming",
    "walking": "walking",
    "nordic_walking": "walking",
    "hiking": "hiking",
    "strength_training": "strength",
    "circuit_training": "strength",
    "rowing": "rowing",
    "indoor_rowing": "indoor_rowing",
    "downhill_skiing": "skiing",
    "snowboarding": "skiing",
    "cross-country_skiing": "cross_country_skiing",
    "cross_country_skiing": "cross_country_skiing",
    "yoga": "yoga",
    "other_indoor": "other",
    "other_outdoor": "other",
}

# TCX <Activity Sport="..."> knows only three values.
TCX: dict[str, str] = {"running": "running", "biking": "cycling", "other": UNSPECIFIED}

# GPX <trk><type>: free text (Garmin typeKeys, Strava names) or StravaGPX's numeric codes.
GPX: dict[str, str] = {
    **GARMIN,
    **STRAVA,
    **TCX,
    "1": "cycling",
    "4": "hiking",
    "9": "running",
    "10": "walking",
    "16": "swimming",
    "other": "other",  # free text: an "other" here is not TCX's constrained Other
}

TABLES: dict[str, dict[str, str]] = {
    "garmin": GARMIN,
    "garmin_export": GARMIN,
    "strava": STRAVA,
    "strava_export": STRAVA,
    "fit": FIT,
    "gpx": GPX,
    "tcx": TCX,
    "apple_health": APPLE_HEALTH,
    "polar": POLAR,
}

# A prefix a source's names carry that an importer may have left off.
PREFIXES: dict[str, str] = {"apple_health": "hkworkoutactivitytype"}


def normalise_sport(source: str, raw: str | None) -> str:
    """Map a source's sport name (FIT: "sport" or "sport/sub_sport") to the vocabulary."""
    if not raw:
        return "other"
    key = raw.strip().lower().replace(" ", "_")
    table = TABLES.get(source, {})
    prefix = PREFIXES.get(source, "")
    if prefix and not key.startswith(prefix):
        key = prefix + key
    candidates = [key, key.split("/", 1)[0], key.replace("_", "")]
    if source in ("garmin", "garmin_export"):
        bare = _VERSION.sub("", key)
        candidates[1:1] = [bare] if bare != key else []
    for candidate in candidates:
        if candidate in table:
            return table[candidate]
        if candidate in SPORTS:
            return candidate
    if prefix:
        bare = key.removeprefix(prefix).split("/", 1)[0]
        if bare in SPORTS:
            return bare
    return "other"


def garmin_sport(type_key: str | None, parent_type_id: object = None) -> str:
    """A Garmin activityType: its key (version stripped), else its parent type, else ``other``."""
    sport = normalise_sport("garmin", type_key)
    if sport == "other" and isinstance(parent_type_id, int) and not isinstance(parent_type_id, bool):
        known = type_key and _VERSION.sub("", type_key.strip().lower()) in GARMIN
        if not known:
            return GARMIN_PARENTS.get(parent_type_id, "other")
    return sport


def family(sport: str) -> str:
    return FAMILY.get(sport, sport)


def compatible(a: str, b: str) -> bool:
    """Two sports may be the same workout: the same family.

    ``other`` (an unknown or unmapped sport) is its own family: it is never a
    wildcard that lets the heuristic join it with any workout nearby.  Only
    ``unspecified`` (a format that cannot name the sport) matches more: every
    family except those the format would have named.
    """
    if UNSPECIFIED in (a, b):
        known = b if a == UNSPECIFIED else a
        return family(known) not in UNSPECIFIED_EXCLUDES
    return family(a) == family(b)
