"""pytest fixtures: the fake servers on 127.0.0.1 and a workspace wired to them.

The workspace points the real clients at the fakes the way a user points them
at a proxy: HEALTHCACHE_GARMIN_API_BASE / _SSO_URL / _TOKEN_URL and
HEALTHCACHE_STRAVA_API_HOST, with the test CA in REQUESTS_CA_BUNDLE.  Waits
are zeroed (retry backoff, garminconnect's anti-bot login pause) so no test
sleeps.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from healthcache.cli import main
from healthcache.config import Paths
from healthcache.model.records import Cache
from healthcache.sources import tokens
from healthcache.store import Store
from tests.fakes.garmin_server import FakeGarmin
from tests.fakes.strava_server import FakeStrava

CLEARED_ENV = (
    "GARMINTOKENS",
    "STRAVA_CLIENT_ID",
    "STRAVA_CLIENT_SECRET",
    "SILENCE_TOKEN_WARNINGS",
    "HEALTHCACHE_HOME",
    "HEALTHCACHE_CREDENTIALS_DIR",
    "HEALTHCACHE_GARMIN_EMAIL",
    "HEALTHCACHE_GARMIN_PASSWORD",
    "HEALTHCACHE_STRAVA_CLIENT_ID",
    "HEALTHCACHE_STRAVA_CLIENT_SECRET",
    "HEALTHCACHE_PG_URL",
)


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle(test_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return path


def start_plain() -> HTTPServer:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    return server


def start_tls(ca: trustme.CA) -> HTTPServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context, threaded=True)
    server.start()
    return server


@pytest.fixture(scope="session")
def garmin_server() -> Iterator[HTTPServer]:
    server = start_plain()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def strava_server(test_ca: trustme.CA) -> Iterator[HTTPServer]:
    server = start_tls(test_ca)
    yield server
    server.stop()


@pytest.fixture
def garmin_api(garmin_server: HTTPServer) -> Iterator[FakeGarmin]:
    """A fresh fake Garmin (empty log, no state) on the session's server."""
    garmin_server.clear()
    yield FakeGarmin(garmin_server)
    garmin_server.clear()


@pytest.fixture
def strava_api(strava_server: HTTPServer) -> Iterator[FakeStrava]:
    strava_server.clear()
    yield FakeStrava(strava_server)
    strava_server.clear()


def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries and login pauses without real sleeping (the code paths still run)."""
    import garminconnect.client.sso as sso

    from healthcache.sources import retry

    monkeypatch.setattr(retry, "RETRY_BASE_SECONDS", 0.0)
    monkeypatch.setattr(sso, "time", SimpleNamespace(sleep=lambda seconds: None))


@dataclass
class Workspace:
    paths: Paths
    garmin: FakeGarmin
    strava: FakeStrava

    def store(self) -> Store:
        return Store(self.paths)

    def cli(self, *args: str, input: str | None = None) -> SimpleNamespace:
        """Run ``healthcache`` through its real entry point (exit codes as a shell sees them)."""
        runner = CliRunner()
        with runner.isolation(input=input) as (out, err, _):
            code = main([*args, "--home", str(self.paths.home)])
        return SimpleNamespace(code=code, out=out.getvalue().decode(), err=err.getvalue().decode())

    def cache(self) -> Cache:
        return self.store().read().cache

    def cache_stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.paths.cache.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def login_garmin(self, ttl: float = 3600) -> None:
        tokens.write_secret(self.paths, tokens.garmin_tokens_path(self.paths), self.garmin.token_file(ttl).encode())

    def login_strava(self, ttl: float = 6 * 3600) -> None:
        tokens.write_json_secret(self.paths, tokens.strava_tokens_path(self.paths), self.strava.token_file(ttl))

    def state(self, source: str) -> dict[str, Any]:
        return json.loads(self.paths.state_file(source).read_text())

    def backups(self) -> list[Path]:
        return sorted(self.paths.backups.glob("*")) if self.paths.backups.exists() else []

    def requests(self) -> int:
        return len(self.garmin.server.log) + len(self.strava.server.log)


@pytest.fixture
def ws(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    garmin_api: FakeGarmin,
    strava_api: FakeStrava,
    ca_bundle: Path,
) -> Workspace:
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**garmin_api.env(), **strava_api.env()}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_bundle))
    no_waits(monkeypatch)
    home = tmp_path / "home"
    home.mkdir()
    return Workspace(Paths(home), garmin_api, strava_api)
