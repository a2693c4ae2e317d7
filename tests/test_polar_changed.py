"""A Polar session's own file that changed is read again; another copy of an imported session is not.

The session rule (``decide``'s ``session``) spares opening a second file of a session already
imported (a single download beside the account export); a file that has an entry of its own is judged
by that entry, as any other, so an edited session downloaded over the old file reaches the merge.
The daily run's one-comparison shortcut (``settled.settles``) comes to the same as ``decide``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "samples"))

import generate as samples

from healthcache.config import Paths
from healthcache.importers import formats
from healthcache.importers import run as run_mod
from healthcache.importers.decide import Facts, decide
from healthcache.importers.manifest import FileEntry, Manifests, SessionEntry
from healthcache.importers.run import run_import
from healthcache.importers.settled import settles
from healthcache.importers.walk import file_item
from healthcache.store import Store

from .test_daily import run_json, setup_home
from .test_import_run import _zip

if TYPE_CHECKING:
    from tests.conftest import Run
    from tests.fakes.fixtures import Workspace

pytest_plugins = ["tests.fakes.fixtures"]

SAMPLE = next((Path(__file__).parents[1] / "healthcache" / "samples" / "data" / "polar").glob("*.json"))
SESSION = "7300112233"


def _edit(path: Path, **fields: Any) -> None:
    """The session edited in Polar Flow and downloaded again over the old file: new content, size and mtime."""
    doc = json.loads(path.read_bytes())
    doc.update(fields)
    hr = doc["exercises"][0]["samples"]["heartRate"]
    hr.append({"dateTime": hr[-1]["dateTime"].replace(".000", ".500"), "value": 150})  # one more HR sample
    path.write_text(json.dumps(doc))


def _polar_names(activities: list[Any]) -> list[str | None]:
    return [a.name for a in activities if "polar" in a.source_ids]


def test_a_changed_polar_file_is_read_again_by_import(run: Run, home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "polar"
    folder.mkdir()
    shutil.copy(SAMPLE, folder)
    assert run("init").exit_code == 0
    assert run("import", str(folder)).exit_code == 0
    _edit(folder / SAMPLE.name, name="Gravel ride with Anna", kiloCalories=1500)
    out = run("import", "-v", str(folder))
    assert out.exit_code == 0, out.output
    assert "1 updated" in out.output and "already imported" not in out.output
    cache = Store(Paths(home)).read().cache
    assert _polar_names(cache.activities) == ["Gravel ride with Anna"]
    assert [a.calories for a in cache.activities] == [1500]
    again = run("import", "-v", str(folder))  # its new stat is its entry's now: unchanged, not opened
    assert "1 unchanged and not opened" in again.output and "unchanged since it was imported" in again.output


def test_a_changed_polar_file_is_read_again_by_the_daily_run(ws: Workspace) -> None:
    inbox = setup_home(ws)
    shutil.copy(SAMPLE, inbox)
    assert run_json(ws)[0] == 0
    _edit(inbox / SAMPLE.name, name="Gravel ride with Anna")

    def import_step() -> dict[str, Any]:
        code, doc = run_json(ws)
        assert code == 0, doc
        return next(s for s in doc["steps"] if s["name"] == "import")

    step = import_step()
    assert (step["seen"], step["updated"], step["skipped"], step["saved"]) == (3, 1, 2, True)
    assert _polar_names(ws.cache().activities) == ["Gravel ride with Anna"]
    quiet = import_step()  # the note of the settled listing vouches for the new stat
    assert (quiet["seen"], quiet["updated"], quiet["skipped"], quiet["saved"]) == (3, 0, 3, False)


def test_another_copy_of_a_session_is_not_opened_but_a_later_change_of_it_is_read(tmp_path: Path) -> None:
    """The session rule's purpose kept: a second file of an imported session (a single download
    beside the account export) is not opened; it gets an entry of its own, so its next download over it is read."""
    store = Store(Paths(tmp_path / "home"))
    name, data = samples.polar_session(samples.WORKOUTS[7], 5551)
    export = tmp_path / "polar-user-data-export.zip"
    export.write_bytes(_zip({f"polar-user-data-export/{name}": data}))
    assert run_import(store, [export]).ok
    single = tmp_path / "downloads" / name
    single.parent.mkdir()
    single.write_bytes(data.replace(b'"exportVersion": "1.6"', b'"exportVersion": "1.7"'))
    first = run_import(store, [single]).files[0]
    assert (first.status, first.opened, first.reason) == ("unchanged", False, "Polar session 5551 already imported")
    doc = json.loads(data)
    doc["name"] = "Renamed in Flow"
    single.write_text(json.dumps(doc))
    report = run_import(store, [single])
    assert report.files[0].status == "imported" and report.files[0].opened
    assert _polar_names(store.read().cache.activities) == ["Renamed in Flow"]
    quiet = run_import(store, [single]).files[0]
    assert (quiet.status, quiet.opened, quiet.reason) == ("unchanged", False, "unchanged since it was imported")


def test_an_export_downloaded_again_over_the_old_reads_its_edited_session(tmp_path: Path) -> None:
    """The same rule for archive members: a member of the archive's own entry is judged by its CRC."""
    store = Store(Paths(tmp_path / "home"))
    name, data = samples.polar_session(samples.WORKOUTS[7], 5551)
    export = tmp_path / "polar-user-data-export.zip"
    member = f"polar-user-data-export/{name}"
    export.write_bytes(_zip({member: data, "polar-user-data-export/account-profile.json": b"{}"}))
    assert run_import(store, [export]).ok
    doc = json.loads(data)
    doc["name"] = "Renamed in Flow"
    export.write_bytes(_zip({member: json.dumps(doc).encode(), "polar-user-data-export/account-profile.json": b"{}"}))
    report = run_import(store, [export])
    lines = {Path(f.path).name: f for f in report.files if f.member}
    assert lines[name].status == "imported" and lines[name].opened
    assert report.merge is not None and report.merge.summary()["updated"] == 1
    assert _polar_names(store.read().cache.activities) == ["Renamed in Flow"]


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        ({}, "session"),  # another copy of an imported session: not opened
        ({"own": True, "unchanged": True}, "stat"),  # its own entry decides
        ({"own": True}, "new"),  # its own file, changed: read again
        ({"own": True, "failed_before": True, "unchanged": True}, "new"),  # failed: tried again
        ({"own": True, "same_digest": True}, "content"),  # only touched
    ],
)
def test_a_session_decides_only_for_an_input_with_no_entry_of_its_own(facts: dict[str, Any], why: str) -> None:
    assert decide(Facts(session="8069", **facts)).why == why


ENTRIES = ("none", "same", "moved", "failed", "skipped")
SESSIONS = ("none", "here", "elsewhere", "failed")


def _manifests(paths: Paths, path: str, st: os.stat_result, entry: str, session: str) -> Manifests:
    """Manifests written under lineage L holding the entry and the session a case names."""
    m = Manifests(paths)
    for manifest in m.groups.values():
        manifest.lineage = "L"
    stat = {"size": st.st_size, "mtime_ns": st.st_mtime_ns + (entry == "moved")}
    if entry != "none":
        status = {"failed": "failed", "skipped": "skipped"}.get(entry, "imported")
        reason = "because" if status != "imported" else None
        m.record("polar", path, FileEntry(status=status, kind="polar", reason=reason, **stat))  # type: ignore[arg-type]
    if session != "none":
        source = path if session == "here" else "/elsewhere/session.json"
        status = "failed" if session == "failed" else "imported"
        m.record_session(SESSION, SessionEntry(file=source, status=status, keys=[f"polar:{SESSION}"]))  # type: ignore[arg-type]
    return m


def test_the_daily_shortcut_agrees_with_decide_in_every_case(tmp_path: Path) -> None:
    """``settles`` says a file needs no opening exactly when the import, short way or full, skips it
    unopened by ``stat`` or ``session``: every entry and session state, a Polar name and another."""
    paths = Paths(tmp_path / "home")
    files = [tmp_path / SAMPLE.name, tmp_path / "ride.fit"]
    for f in files:
        f.write_bytes(b"{}")
    seen = {}
    for f, entry, session in itertools.product(files, ENTRIES, SESSIONS):
        path, st = str(f), f.stat()
        m = _manifests(paths, path, st, entry, session)
        run = run_mod._Run(manifests=m, full=False, given_limits=None, progress=None)
        short = run_mod._unchanged(run, path, st)
        facts = run_mod._facts(run, file_item(path, st), m.lookup(path))
        skipped = short is not None or decide(facts).why in ("stat", "session")
        assert settles(m, [(path, st)], "L") == skipped, (f.name, entry, session)
        seen[(f.suffix, entry, session)] = skipped
    assert seen[(".json", "moved", "here")] is False  # the file changed: read again (the issue)
    assert seen[(".json", "moved", "elsewhere")] is False
    assert seen[(".json", "none", "elsewhere")] is True  # another copy of the session: not opened
    assert seen[(".json", "same", "failed")] is True and seen[(".fit", "none", "here")] is False
    assert formats.group_of("polar") == "polar"  # the group the cases' entries are written to
