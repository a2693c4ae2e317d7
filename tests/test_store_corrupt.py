"""The strict loader: every kind of bad input is one typed error, and the file stays untouched."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthcache import codec
from healthcache.errors import CorruptInput, HealthcacheError, NewerSchema
from healthcache.model import checks
from healthcache.model.records import SCHEMA_VERSION, Cache
from healthcache.store import Store
from healthcache.verify import strict_validate
from tests import factories
from tests.conftest import Run


def _good() -> bytes:
    return codec.encode(factories.cache(3))


def _doc() -> dict:
    return json.loads(_good())


def _dumps(doc: object) -> bytes:
    return json.dumps(doc, indent=2).encode()


def _dup_top() -> bytes:
    text = _good().decode()
    line = f'"schema_version": {SCHEMA_VERSION},'
    return text.replace(line, f"{line}\n  {line}", 1).encode()


def _dup_nested() -> bytes:
    text = _good().decode()
    return text.replace('"activityId":', '"activityId": 1,\n "activityId":', 1).encode()


def _mutate(**changes: object) -> bytes:
    doc = _doc()
    act = doc["activities"][0]
    for key, value in changes.items():
        act[key] = value
    return _dumps(doc)


def _dup_ids() -> bytes:
    doc = _doc()
    doc["activities"][1]["id"] = doc["activities"][0]["id"]
    return _dumps(doc)


def _dup_source_ids() -> bytes:
    doc = _doc()
    doc["activities"][1]["source_ids"] = dict(doc["activities"][0]["source_ids"])
    return _dumps(doc)


def _newer() -> bytes:
    doc = _doc()
    doc["schema_version"] = SCHEMA_VERSION + 1
    doc["new_field"] = {"x": 1}
    return _dumps(doc)


CORRUPT: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b"  \n",
    "invalid utf-8": _good()[:200] + b"\xff\xfe" + _good()[200:],
    "truncated": _good()[: len(_good()) // 2],
    "nan": _good().replace(b'"avg_hr": ', b'"avg_hr": NaN, "x": ', 1),
    "infinity": _good().replace(b'"calories": 512.0', b'"calories": Infinity', 1),
    "deep nesting": b'{"schema_version": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep raw": _good().replace(b'"hasPolyline": true', b'"hasPolyline": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000, 1),
    "duplicate top-level key": _dup_top(),
    "duplicate nested key": _dup_nested(),
    "wrong type": _mutate(distance_m="ten km"),
    "negative distance": _mutate(distance_m=-5.0),
    "bad time": _mutate(start_time="2020-13-45T99:00:00Z"),
    "time without Z": _mutate(start_time="2020-01-01T06:00:00+02:00"),
    "unknown field": _mutate(surprise=1),
    "missing field": _dumps({k: v for k, v in _doc().items() if k != "activities"}),
    "not an object": b"[1, 2, 3]",
    "duplicate ids": _dup_ids(),
    "duplicate source ids": _dup_source_ids(),
    "newer schema": _newer(),
    "binary": bytes(range(256)) * 10,
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_loader_raises_one_typed_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / "unified-cache.json"
    with pytest.raises(CorruptInput) as info:
        codec.decode(CORRUPT[name], path)
    assert str(path) in str(info.value)
    if name == "newer schema":
        assert isinstance(info.value, NewerSchema)
        assert "newer healthcache" in str(info.value)


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_cli_exits_4_names_backup_and_leaves_file_untouched(store: Store, run: Run, name: str) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(2))
    with store.transaction() as tx:
        tx.save(factories.cache(3))  # the first file is now a good backup
    store.paths.cache.write_bytes(CORRUPT[name])
    for args in (["status"], ["verify"], ["delete", "garmin:9000000000", "--reason", "x"]):
        result = run(*args)
        assert result.exit_code == 4, (args, result.output)
        assert str(store.paths.cache) in result.output
        assert store.paths.cache.read_bytes() == CORRUPT[name]
    if name == "newer schema":
        assert "newer healthcache" in result.output
    else:
        assert "healthcache restore --home" in result.output
        assert "unified-cache-" in result.output


def test_restore_repairs_a_corrupt_cache_and_keeps_the_corrupt_file(store: Store, run: Run) -> None:
    with store.transaction() as tx:
        tx.save(factories.cache(2))
    with store.transaction() as tx:
        tx.save(factories.cache(3))
    store.paths.cache.write_bytes(CORRUPT["truncated"])
    result = run("restore", "--latest")
    assert result.exit_code == 0, result.output
    # The state last saved is kept as the newest backup: nothing of the last save is lost.
    assert len(store.read().cache.activities) == 3
    kept = [p for p in store.paths.backups.iterdir() if p.name.endswith(".corrupt.json")]
    assert len(kept) == 1 and kept[0].read_bytes() == CORRUPT["truncated"]


def test_missing_cache_is_an_empty_cache(store: Store) -> None:
    loaded = store.read()
    assert not loaded.exists and loaded.cache.activities == []


def test_non_canonical_but_valid_file_loads(tmp_path: Path) -> None:
    compact = json.dumps(_doc()).encode()
    cache = codec.decode(compact, tmp_path / "c.json")
    assert len(cache.activities) == 3


# --- any bytes give a valid cache or the typed error -------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _load_or_typed_error(data: bytes) -> None:
    try:
        cache = codec.decode(data, Path("fuzz.json"))
    except CorruptInput:
        return
    assert isinstance(cache, Cache)
    assert codec.hard_invariants(cache) == []


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes(data: bytes) -> None:
    _load_or_typed_error(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_files(data: st.DataObject) -> None:
    good = bytearray(_good())
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, len(good) - 1))
        if op == "flip":
            good[pos] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del good[pos : pos + data.draw(st.integers(1, 50))]
        else:
            good[pos:pos] = data.draw(st.binary(min_size=1, max_size=20))
        if not good:
            break
    _load_or_typed_error(bytes(good))


@settings(max_examples=200)
@given(json_values)
def test_arbitrary_json_documents(value: object) -> None:
    _load_or_typed_error(json.dumps(value).encode())


# --- the compiled validator (typed decode) agrees with the reference jsonschema ---------


def test_shipped_schema_is_the_model() -> None:
    shipped = json.loads((Path(__file__).parents[1] / "healthcache/model/schema.json").read_text())
    generated = msgspec.json.schema(checks.strict(Cache))
    assert {k: v for k, v in shipped.items() if not k.startswith("$schema") and k not in ("$id", "title")} == generated


AGREEMENT_DOCS = {
    name: data for name, data in CORRUPT.items() if name not in ("duplicate ids", "duplicate source ids", "bad time")
}


@pytest.mark.parametrize("name", sorted(AGREEMENT_DOCS))
def test_validators_agree_on_invalid(name: str) -> None:
    data = AGREEMENT_DOCS[name]
    try:
        doc = codec.strict_json(data, Path("x"))
    except CorruptInput:
        return  # not JSON at all: neither validator is reached
    assert _compiled_ok(doc) == (strict_validate(doc) == []), name


@settings(max_examples=150)
@given(st.data())
def test_validators_agree_on_field_mutations(data: st.DataObject) -> None:
    doc = _doc()
    act = doc["activities"][data.draw(st.integers(0, 2))]
    field = data.draw(st.sampled_from([*sorted(act), "schema_version", "nope"]))
    value = data.draw(json_values)
    if field in ("schema_version", "nope"):
        doc[field] = value
    else:
        act[field] = value
    assert _compiled_ok(doc) == (strict_validate(doc) == []), (field, value)


def test_validators_agree_on_valid() -> None:
    for n in (0, 1, 25):
        doc = json.loads(codec.encode(factories.cache(n)))
        assert _compiled_ok(doc)
        assert strict_validate(doc) == []


def _compiled_ok(doc: object) -> bool:
    """What the compiled validator says of a document (``checks.convert_checked``, the model and its
    patterns); when the document can be written as JSON (no NaN or infinity), the store's validation
    of bytes not known as its own (``codec._checked``) must say the same of those bytes."""
    try:
        checks.convert_checked(doc, Cache)
        ok = True
    except msgspec.ValidationError:
        ok = False
    try:
        data = json.dumps(doc, allow_nan=False).encode()
    except ValueError:
        return ok  # not JSON: only the document can be checked
    try:
        codec._checked.decode(data)
        assert ok, "the decoder accepted what convert_checked refused"
    except msgspec.ValidationError:
        assert not ok, "the decoder refused what convert_checked accepted"
    return ok


def _nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_nesting_limit_is_ours_not_the_decoders(tmp_path: Path) -> None:
    doc = _doc()
    doc["activities"][0]["raw"]["garmin"] = _nested(70)  # any decoder takes 70 levels
    with pytest.raises(CorruptInput, match="nested more than 64"):
        codec.decode(_dumps(doc), tmp_path / "c.json")
    doc["activities"][0]["raw"]["garmin"] = _nested(20)
    assert codec.decode(_dumps(doc), tmp_path / "c.json").activities[0].raw["garmin"] == _nested(20)


def test_save_refuses_absurdly_nested_payload(store: Store) -> None:
    import msgspec as ms

    from healthcache.errors import HealthcacheError

    deep = ms.structs.replace(factories.activity(1), raw={"garmin": _nested(70)})
    with store.transaction() as tx, pytest.raises(HealthcacheError, match="nested more than 64"):
        tx.save(ms.structs.replace(tx.cache, activities=[deep]))
    assert not store.paths.cache.exists()


# --- the string patterns: checked where bytes are not proven healthcache's own ---------


def _pattern_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the bytes given to the pattern check."""
    seen: list[int] = []
    real = checks.check_patterns

    def counting(data: bytes | memoryview, cls: type[msgspec.Struct]) -> None:
        seen.append(len(data))
        real(data, cls)

    monkeypatch.setattr(checks, "check_patterns", counting)
    return seen


def test_a_file_healthcache_saved_is_loaded_without_its_patterns_checked_again(
    store: Store, seeded: Callable[[int], Cache], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: every load ran the patterns' regexes (a third of the typed parse).  Now a file whose
    hash is the one its save recorded is not checked again; any other file is, in full."""
    seeded(30)
    seen = _pattern_checks(monkeypatch)
    store.read()
    assert seen == []
    data = store.paths.cache.read_bytes()
    store.paths.cache.write_bytes(data.replace(b'"generator": "', b'"generator": "edited ', 1))  # outside edit
    store.read()
    assert seen == [len(data) + len(b"edited ")]


def test_a_pattern_broken_outside_healthcache_is_refused_with_the_file_and_where(
    store: Store, seeded: Callable[[int], Cache]
) -> None:
    seeded(5)
    data = store.paths.cache.read_bytes()
    sport = store.read().cache.activities[2].sport
    broken = data.replace(f'"sport": "{sport}"'.encode(), b'"sport": "Trail Run"')
    store.paths.cache.write_bytes(broken)
    with pytest.raises(CorruptInput) as err:
        store.read()
    assert str(store.paths.cache) in str(err.value) and "$.activities[" in str(err.value)
    assert "does not match the cache schema" in str(err.value)
    assert store.paths.cache.read_bytes() == broken


@pytest.mark.parametrize(
    ("field", "value"),
    [("sport", "Trail Run"), ("start_time", "2024-05-19 07:00:00"), ("source", "Garmin"), ("aliases", ["no-colon"])],
)
def test_a_save_checks_the_patterns_of_what_it_writes(
    store: Store, seeded: Callable[[int], Cache], field: str, value: object
) -> None:
    """An activity built in code with a value its pattern refuses is refused by the save, which writes nothing."""
    seeded(5)
    before = store.paths.cache.read_bytes()
    with store.transaction() as tx, pytest.raises(HealthcacheError, match="does not match the schema"):
        bad = msgspec.structs.replace(factories.activity(99), **{field: value})
        tx.save(msgspec.structs.replace(tx.cache, activities=[*tx.cache.activities, bad]))
    assert store.paths.cache.read_bytes() == before


def test_the_pattern_checker_holds_every_pattern_of_the_model() -> None:
    """``checker(Cache)`` refuses each patterned field's bad value, wherever in the model it is."""
    doc = json.loads(codec.encode(factories.cache(2)))
    doc["tombstones"] = [{"id": "garmin:9", "deleted_at": "2024-01-01T00:00:00Z", "reason": "r"}]
    doc["links"] = [{"ids": ["garmin:1", "strava:2"], "kind": "same", "at": "2024-01-01T00:00:00Z"}]
    checks.check_patterns(json.dumps(doc).encode(), Cache)
    for where in (
        ("updated_at",),
        ("activities", 1, "id"),
        ("activities", 1, "first_seen_at"),
        ("tombstones", 0, "deleted_at"),
        ("links", 0, "ids", 1),
    ):
        bad = json.loads(json.dumps(doc))
        *path, last = where
        target = bad
        for step in path:
            target = target[step]
        target[last] = "Not Valid"
        with pytest.raises(msgspec.ValidationError, match="matching regex"):
            checks.check_patterns(json.dumps(bad).encode(), Cache)


def _patterns(kind: object, where: str = "$") -> set[tuple[str, str]]:
    """Every (place, regex) a type holds, through Structs, lists, dicts (keys and values) and unions."""
    import typing

    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        found = {(where, m.pattern) for m in args[1:] if isinstance(m, msgspec.Meta) and m.pattern}
        return found | _patterns(args[0], where)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return {p for f in msgspec.structs.fields(kind) for p in _patterns(f.type, f"{where}.{f.encode_name}")}
    if origin is dict:
        return _patterns(args[0], f"{where}{{key}}") | _patterns(args[1], f"{where}{{value}}")
    return {p for a in args for p in _patterns(a, f"{where}[]" if origin is list else where)}


def test_the_pattern_checker_holds_every_pattern_of_the_schema_and_nothing_else() -> None:
    """Structurally: the checker's patterns are exactly the full schema's, place for place (joins,
    figures, dict keys and all), so no pattern is left to a check that no longer runs."""
    full, checked = _patterns(checks.strict(Cache)), _patterns(checks.checker(Cache))
    assert checked == full
    assert {w for w, _ in full} >= {
        "$.activities[].joins[].figures.sports[]",
        "$.activities[].raw{key}",
        "$.links[].ids[]",
    }
    assert _patterns(Cache) == set()  # the model's own decoder runs none of them
