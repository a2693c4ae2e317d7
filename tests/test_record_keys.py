"""``unique_record_keys``: the flat, faster form of "every holder's ``record_keys``, none held twice"."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from healthcache.model.records import record_keys, unique_record_keys
from tests import factories


@dataclass
class _Holder:
    id: str
    aliases: list[str] = field(default_factory=list)
    source_ids: dict[str, str] = field(default_factory=dict)


# Few names, so that keys collide often: within one holder and between holders.
_source = st.sampled_from(["garmin", "strava", "polar"])
_local = st.sampled_from(["1", "2", "3"])
_key = st.builds(lambda s, i: f"{s}:{i}", _source, _local)
_holder = st.builds(_Holder, _key, st.lists(_key, max_size=2), st.dictionaries(_source, _local, max_size=2))


def _per_holder(holders: list[_Holder]) -> set[str] | None:
    """The definition: the union of each holder's keys, None when two holders share one."""
    seen: set[str] = set()
    total = 0
    for h in holders:
        keys = record_keys(h)
        total += len(keys)
        seen |= keys
    return seen if len(seen) == total else None


@given(st.lists(_holder, max_size=6))
def test_it_never_accepts_what_the_definition_refuses_and_agrees_when_it_accepts(holders: list[_Holder]) -> None:
    fast, exact = unique_record_keys(holders), _per_holder(holders)
    if exact is None:
        assert fast is None
    elif fast is not None:
        assert fast == exact
    else:  # a false "no" only when a holder lists an alias twice: the caller then looks closer
        assert any(len(h.aliases) != len(set(h.aliases)) for h in holders)


def test_a_realistic_cache_keys_are_those_of_the_definition() -> None:
    acts = factories.cache(300).activities
    assert unique_record_keys(acts) == _per_holder(acts) is not None
    twin = acts[5].__class__(**{f: getattr(acts[5], f) for f in acts[5].__struct_fields__})
    assert unique_record_keys([*acts, twin]) is None
