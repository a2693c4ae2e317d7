"""The cache's data model: typed records, the sport vocabulary and the shipped JSON Schema."""

from healthcache.model.records import (
    SCHEMA_VERSION,
    Activity,
    Cache,
    HRSplit,
    Link,
    SourceRecord,
    Tombstone,
)

__all__ = ["SCHEMA_VERSION", "Activity", "Cache", "HRSplit", "Link", "SourceRecord", "Tombstone"]
