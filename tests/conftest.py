from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from healthcache.cli import cli, main
from healthcache.config import Paths
from healthcache.model.records import Cache
from healthcache.store import Store
from tests import factories

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(autouse=True)
def per_user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The per-user data folder (platformdirs honours $XDG_DATA_HOME) under the test's tmp: no test ever
    writes into the real per-user workspace, whatever the command and its current folder."""
    xdg = tmp_path / ".xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    return xdg


@pytest.fixture(autouse=True, scope="session")
def utc_machine() -> Iterator[None]:
    """Every test (and session fixture) runs as on a machine in UTC, the display zone's default, whatever
    this machine's zone: a test about zones sets its own ([display] timezone, or TZ)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", "UTC")
        yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace; HEALTHCACHE_HOME is cleared so nothing leaks in from the environment."""
    monkeypatch.delenv("HEALTHCACHE_HOME", raising=False)
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def store(home: Path) -> Store:
    return Store(Paths.resolve(home))


@pytest.fixture
def seeded(store: Store) -> Callable[[int], Cache]:
    """Save a realistic cache of n activities through the real store."""

    def seed(n: int = 20) -> Cache:
        with store.transaction() as tx:
            tx.save(factories.cache(n))
        return store.read().cache

    return seed


class Run:
    """Run the CLI in-process the way the console script does (exit codes from main())."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def __call__(self, *args: str, input: str | None = None) -> Result:
        runner = CliRunner()
        argv = [*args]
        if "--home" not in argv and args and not {"--help", "--version"} & set(args):
            argv += ["--home", str(self.home)]

        def entry() -> None:
            raise SystemExit(main(argv))

        import click

        wrapper = click.Command("healthcache", callback=entry)
        return runner.invoke(wrapper, [], input=input, catch_exceptions=False)


@pytest.fixture
def run(home: Path) -> Run:
    return Run(home)


__all__ = ["CORPUS", "cli"]
