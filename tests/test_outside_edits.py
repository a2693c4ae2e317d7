"""Edits made outside healthcache are noticed (issue 10, point 2).

An old script that rebuilds the cache from scratch can drop an activity and
leave the record count where the baseline allows; healthcache knows the
state it last saved (kept as the newest backup) and compares with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import msgspec
import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parents[1] / "samples"))

import generate as samples

from healthcache import backup
from healthcache.cacheindex import read_index
from healthcache.cli import main
from healthcache.config import Paths
from healthcache.store import Store


def invoke(*args: str) -> Result:
    def entry() -> None:
        raise SystemExit(main(list(args)))

    return CliRunner().invoke(click.Command("healthcache", callback=entry), [], catch_exceptions=False)


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A home with four GPX activities imported, and a fifth GPX waiting in another folder."""
    home, first, later = tmp_path / "home", tmp_path / "gpx", tmp_path / "later"
    first.mkdir()
    later.mkdir()
    for i in range(4):
        (first / f"run{i}.gpx").write_bytes(samples.gpx_bytes(samples.WORKOUTS[i]))
    (later / "run4.gpx").write_bytes(samples.gpx_bytes(samples.WORKOUTS[4]))
    result = invoke("import", "--home", str(home), str(first))
    assert result.exit_code == 0, result.output
    return home, first, later


def _drop_first_activity_like_an_old_script(cache_path: Path) -> str:
    """Rewrite the file as a script would: parse, drop one activity, dump (in place, new bytes)."""
    doc: dict[str, Any] = json.loads(cache_path.read_text())
    gone = doc["activities"].pop(0)
    with cache_path.open("w") as f:  # truncates the same inode, as json.dump(open(p, "w")) does
        json.dump(doc, f, indent=1)
    return str(gone["id"])


def _files(home: Path) -> dict[str, bytes]:
    """Every file of the workspace but the run history (a refused run is recorded there, by design)."""
    history = home / "tracking" / "history"
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and history not in p.parents
    }


def test_a_loss_made_outside_is_refused_named_and_undone_with_restore_merge(workspace: Any) -> None:
    home, _, later = workspace
    paths = Paths(home)
    gone = _drop_first_activity_like_an_old_script(paths.cache)
    before = _files(home)

    result = invoke("import", "--home", str(home), str(later))
    assert result.exit_code == 3, result.output
    assert "changed outside healthcache" in result.output and gone in result.output
    kept = backup.list_backups(paths.backups)[0]
    assert f"healthcache restore --home {home} --merge {kept.name}" in result.output
    assert "--accept-outside-edits" in result.output
    assert _files(home) == before  # nothing written at all
    as_json = invoke("import", "--home", str(home), "--json", str(later))
    failure = json.loads(as_json.stdout)
    assert failure["exit_code"] == 3 and failure["lost"] == [gone] and failure["last_saved"] == str(kept.path)
    assert "changed outside healthcache" in failure["error"]

    verify = invoke("verify", "--home", str(home))
    assert verify.exit_code == 3, verify.output
    assert "changed outside healthcache since" in verify.output and gone in verify.output
    data = json.loads(invoke("verify", "--home", str(home), "--json").output)
    assert [v["subject"] for v in data["outside"]["lost"]] == [gone]

    restored = invoke("restore", "--home", str(home), "--merge", kept.name)
    assert restored.exit_code == 0, restored.output
    assert gone in {a.id for a in Store(paths).read().cache.activities}
    again = invoke("import", "--home", str(home), str(later))
    assert again.exit_code == 0, again.output
    assert len(Store(paths).read().cache.activities) == 5
    assert invoke("verify", "--home", str(home)).exit_code == 0


def test_a_loss_accepted_explicitly_is_kept_and_healthcache_moves_on(workspace: Any) -> None:
    home, _, later = workspace
    paths = Paths(home)
    gone = _drop_first_activity_like_an_old_script(paths.cache)
    result = invoke("import", "--home", str(home), "--accept-outside-edits", str(later))
    assert result.exit_code == 0, result.output
    assert "changed outside healthcache" in result.output and gone in result.output
    ids = {a.id for a in Store(paths).read().cache.activities}
    assert gone not in ids and len(ids) == 4
    # The accepted file is the new reference: the next command is not refused again.
    assert invoke("verify", "--home", str(home)).exit_code == 0
    assert backup.list_backups(paths.backups)[0].path.read_bytes() == paths.cache.read_bytes()


def test_an_edit_outside_that_loses_nothing_is_reconciled_and_said(workspace: Any) -> None:
    home, _, later = workspace
    paths = Paths(home)
    doc = json.loads(paths.cache.read_text())
    doc["activities"][0]["name"] = "Renamed by hand"
    paths.cache.write_text(json.dumps(doc, indent=2))
    result = invoke("verify", "--home", str(home))
    assert result.exit_code == 0, result.output
    assert "changed outside healthcache" in result.output
    result = invoke("import", "--home", str(home), str(later))
    assert result.exit_code == 0, result.output
    assert "changed outside healthcache" in result.output and "nothing healthcache saved is missing" in result.output
    assert "Renamed by hand" in {a.name for a in Store(paths).read().cache.activities}
    index = read_index(paths)
    assert index is not None and index.sha256 == backup.file_sha256(paths.cache)


def test_a_stale_index_over_the_last_saved_file_is_no_outside_edit(store: Store, seeded: Any) -> None:
    """A crash between the save and the index write leaves the index behind; the file is still ours."""
    seeded(3)
    stale_index = store.paths.index.read_bytes()
    with store.transaction() as tx:
        first = msgspec.structs.replace(tx.cache.activities[0], name="Tempo")
        tx.save(msgspec.structs.replace(tx.cache, activities=[first, *tx.cache.activities[1:]]))
    store.paths.index.write_bytes(stale_index)
    with store.transaction() as tx:
        assert tx.outside is not None and not tx.outside.changed and not tx.outside.lost
        result = tx.save(tx.cache)
    assert not result.changed
    index = read_index(store.paths)
    assert index is not None and index.sha256 == backup.file_sha256(store.paths.cache)


def test_the_library_refuses_unless_accepted(store: Store, seeded: Any) -> None:
    from healthcache.store import OutsideEditRefused

    seeded(3)
    gone = _drop_first_activity_like_an_old_script(store.paths.cache)
    with pytest.raises(OutsideEditRefused) as caught, store.transaction():
        pass
    assert caught.value.exit_code == 3 and [v.subject for v in caught.value.violations] == [gone]
    accepting = Store(store.paths, accept_outside_edits=True)
    with accepting.transaction() as tx:
        result = tx.save(tx.cache)
    assert result.outside is not None and result.outside.lost and result.lineage is not None
    with store.transaction() as tx:  # adopted: no longer an outside edit
        assert tx.outside is None


def test_the_replaced_file_sorts_before_the_state_that_replaces_it(tmp_path: Path) -> None:
    """Both backups of one save are named apart in time, so "newest" is always the state saved."""
    from datetime import UTC, datetime

    from tests import factories

    clock = [datetime(2026, 1, 1, 11, 0, tzinfo=UTC)]
    paths = Paths(tmp_path / "home")
    store = Store(paths, clock=lambda: clock[0])
    with store.transaction() as tx:
        tx.save(factories.cache(2))
    clock[0] = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)  # one clock reading for the whole next save
    doc = json.loads(paths.cache.read_text())
    doc["activities"][0]["name"] = "edited by hand"  # not kept yet, and nothing lost
    paths.cache.write_text(json.dumps(doc, indent=2))
    outside = paths.cache.read_bytes()
    with store.transaction() as tx:
        tx.save(msgspec.structs.replace(tx.cache, activities=tx.cache.activities[:1] + tx.cache.activities[1:]))
    newest, replaced, *_ = backup.list_backups(paths.backups)
    assert newest.when > replaced.when
    assert newest.path.read_bytes() == paths.cache.read_bytes() and backup.read_bytes(replaced.path) == outside


def test_a_state_equal_to_an_older_backup_is_still_kept_as_the_newest(tmp_path: Path) -> None:
    """Going back to an earlier content (an undo within the second) keeps it again as the newest backup."""
    from datetime import UTC, datetime, timedelta

    from tests import factories

    clock = [datetime(2026, 1, 1, 12, 0, tzinfo=UTC)]

    def tick() -> datetime:
        clock[0] += timedelta(milliseconds=1)  # within one second: updated_at stays as it was
        return clock[0]

    paths = Paths(tmp_path / "home")
    store = Store(paths, clock=tick)
    with store.transaction() as tx:
        tx.save(factories.cache(2))
    first = paths.cache.read_bytes()
    with store.transaction() as tx:
        renamed = msgspec.structs.replace(tx.cache.activities[0], name="Tempo")
        tx.save(msgspec.structs.replace(tx.cache, activities=[renamed, *tx.cache.activities[1:]]))
    with store.transaction() as tx:
        result = tx.save(msgspec.structs.replace(tx.cache, activities=factories.cache(2).activities))
    assert result.changed and paths.cache.read_bytes() == first
    newest = backup.list_backups(paths.backups)[0]
    assert result.kept == newest.path and backup.read_bytes(newest.path) == first
