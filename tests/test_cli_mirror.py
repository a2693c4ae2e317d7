"""A configured mirror is refreshed after a successful import; its failure never undoes the save."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from healthcache.store import Store
from tests import fitgen
from tests.conftest import Run


def _fit_folder(home: Path) -> Path:
    folder = home.parent / "inbox"
    folder.mkdir()
    (folder / "run.fit").write_bytes(fitgen.run(datetime(2026, 5, 1, 6, 30, tzinfo=UTC)))
    return folder


def test_import_refreshes_the_configured_sqlite_mirror(store: Store, run: Run) -> None:
    store.paths.config_file.write_text('[export]\ntargets = ["sqlite:mirror.db"]\n')
    result = run("import", str(_fit_folder(store.paths.home)))
    assert result.exit_code == 0, result.output
    ids = {a.id for a in store.read().cache.activities}
    with sqlite3.connect(store.paths.home / "mirror.db") as db:
        mirrored = {row[0] for row in db.execute("select id from activities")}
    assert mirrored == ids and len(ids) == 1


def test_failing_mirror_is_reported_and_the_import_is_kept(store: Store, run: Run) -> None:
    store.paths.config_file.write_text('[export]\ntargets = ["sqlite:no/such/folder/mirror.db"]\n')
    result = run("import", str(_fit_folder(store.paths.home)))
    assert result.exit_code == 1
    assert "export" in result.stderr
    assert len(store.read().cache.activities) == 1  # the save stands
