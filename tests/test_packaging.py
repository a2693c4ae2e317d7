"""healthcache installs like a Python tool (issue 15 point 1).

The wheel is built by the declared build backend in an isolated environment, installed into
a fresh venv with nothing but its own dependencies, and run from there: ``--help``, the
bundled samples imported, ``export postgres`` without the extra. The declared dependencies
are exactly the third-party modules the package imports, and the shipped sample files are
what ``samples/generate.py`` writes.
"""

from __future__ import annotations

import ast
import gzip
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import healthcache.samples
from tests.conftest import Run

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# Modules only an extra provides, and the only files allowed to import them (each lazily, with a message).
EXTRA_MODULES = {
    "psycopg": ("postgres", {"healthcache/export/postgres.py"}),
    "altair": ("report", {"healthcache/report/charts.py"}),
    "vl_convert": ("report", {"healthcache/report/charts.py"}),
}


# ---------------------------------------------------------------- dependency truth


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party module -> the package files importing it (function-level imports count)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "healthcache").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != "healthcache":
                    found.setdefault(top, set()).add(rel)
    return found


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def _providers() -> dict[str, set[str]]:
    return {m: {canonicalize_name(d) for d in ds} for m, ds in importlib.metadata.packages_distributions().items()}


def test_declared_dependencies_are_exactly_the_imported_modules() -> None:
    imports = _third_party_imports()
    providers = _providers()
    base = _names(PYPROJECT["project"]["dependencies"])
    extras = {k: _names(v) for k, v in PYPROJECT["project"]["optional-dependencies"].items()}

    undeclared = {
        m: sorted(files)
        for m, files in imports.items()
        if m not in EXTRA_MODULES and not providers.get(m, set()) & base
    }
    assert undeclared == {}, "imported but not a declared dependency"
    imported_dists = set().union(*(providers.get(m, set()) for m in imports))
    assert base - imported_dists == set(), "declared but never imported"
    for module, (extra, allowed) in EXTRA_MODULES.items():
        assert imports.get(module) == allowed, module
        assert providers[module] & extras[extra], (module, extra)
        assert not providers[module] & base, f"{module} must stay out of the base dependencies"


def test_every_dependency_has_a_lower_bound() -> None:
    requirements = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["build-system"]["requires"]]
    for group in PYPROJECT["project"]["optional-dependencies"].values():
        requirements += [r for r in group if canonicalize_name(Requirement(r).name) != "healthcache"]
    unbounded = [r for r in requirements if not any(s.operator in (">=", "==", "~=") for s in Requirement(r).specifier)]
    assert unbounded == []


# ---------------------------------------------------------------- the postgres extra


def test_export_postgres_without_psycopg_says_how_to_add_it(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed: `import psycopg` raises ImportError
    monkeypatch.delitem(sys.modules, "healthcache.export.postgres", raising=False)
    result = run("export", "postgres", "postgresql://me:secret@127.0.0.1:1/training")
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "PostgreSQL export needs psycopg" in result.stderr
    assert "pip install 'healthcache[postgres]'" in result.stderr
    assert "Traceback" not in result.output and "secret" not in result.output


def test_export_postgres_without_psycopg_under_json(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.delitem(sys.modules, "healthcache.export.postgres", raising=False)
    result = run("export", "postgres", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 1 and "healthcache[postgres]" in doc["hint"]


# ---------------------------------------------------------------- shipped samples


def _content(name: str, data: bytes) -> Any:
    """What a file holds, with zip and gzip members unpacked: equal however zlib compressed them."""
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return [(i.filename, i.date_time, _content(i.filename, z.read(i))) for i in z.infolist()]
    if name.endswith(".gz"):
        return ("gzip", _content(name.removesuffix(".gz"), gzip.decompress(data)))
    return data


def _tree(folder: Path) -> dict[str, Any]:
    return {
        p.relative_to(folder).as_posix(): _content(p.name, p.read_bytes()) for p in folder.rglob("*") if p.is_file()
    }


def test_shipped_samples_are_what_the_generator_writes(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "samples"))
    try:
        import generate
    finally:
        sys.path.remove(str(ROOT / "samples"))
    info = generate.generate(tmp_path)
    shipped = healthcache.samples.path()
    assert shipped == ROOT / "healthcache" / "samples" / "data"
    assert sorted(_tree(shipped)) == info["files"]
    assert _tree(shipped) == _tree(tmp_path), "regenerate: python samples/generate.py healthcache/samples/data"


# ---------------------------------------------------------------- the wheel, built and installed in isolation


def _copy_source(dest: Path) -> Path:
    """What `pip install .` sees of a checkout: built away from the shared work tree (build/ and egg-info)."""
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "healthcache", src / "healthcache", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    )
    return src


def _clean_env() -> dict[str, str]:
    """The environment without this venv on the path, so the fresh venv's own tools are used."""
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "HEALTHCACHE_HOME")}


def _check(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_builds_in_isolation_and_runs_from_a_fresh_venv(tmp_path: Path) -> None:
    src = _copy_source(tmp_path)
    dist = tmp_path / "dist"
    # `python -m build` installs the declared build requirement into a throwaway venv (PyPI).
    _check([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)])
    (wheel,) = dist.glob("healthcache-*.whl")

    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = z.read(metadata).decode()
    dist_info = metadata.removesuffix("/METADATA")
    assert f"{dist_info}/licenses/LICENSE" in names
    assert "License-Expression: MIT" in meta
    assert {"healthcache/py.typed", "healthcache/model/schema.json"} <= names
    shipped = {f"healthcache/samples/data/{f}" for f in _tree(ROOT / "healthcache" / "samples" / "data")}
    assert shipped and shipped <= names
    assert not any(n.startswith(("tests/", "samples/")) for n in names)
    requires = re.findall(r"^Requires-Dist: (.+)$", meta, re.M)
    assert not any(r.startswith("gpxpy") for r in requires)
    assert [r for r in requires if r.startswith("psycopg")] == ['psycopg[binary]>=3.1; extra == "postgres"']

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)  # no system site packages: only what the wheel declares
    bin_dir = env_dir / "bin"
    _check([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    hc = str(bin_dir / "healthcache")
    work = tmp_path / "work"
    work.mkdir()

    help_text = _check([hc, "--help"], cwd=work).stdout
    assert "Usage: healthcache" in help_text and "import" in help_text
    samples = Path(_check([str(bin_dir / "python"), "-m", "healthcache.samples"], cwd=work).stdout.strip())
    assert samples.is_relative_to(env_dir) and samples.is_dir()

    _check([hc, "import", "--home", "ws", str(samples)], cwd=work)
    cache = json.loads((work / "ws" / "tracking" / "unified-cache.json").read_bytes())
    assert len(cache["activities"]) == 8
    _check([hc, "verify", "--home", "ws"], cwd=work)

    no_pg = subprocess.run(
        [hc, "export", "postgres", "postgresql://me@127.0.0.1:1/x", "--home", "ws"],
        capture_output=True,
        text=True,
        cwd=work,
        env=_clean_env(),
    )
    assert no_pg.returncode == 1 and "healthcache[postgres]" in no_pg.stderr, no_pg.stderr
    assert "Traceback" not in no_pg.stderr


@pytest.mark.slow
def test_wheel_builds_with_the_lowest_declared_setuptools(tmp_path: Path) -> None:
    (requirement,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(f"setuptools=={floor}\n")
    src = _copy_source(tmp_path)
    dist = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
        capture_output=True,
        text=True,
        env={**_clean_env(), "PIP_CONSTRAINT": str(constraints)},  # the isolated build env gets exactly the floor
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = dist.glob("healthcache-*.whl")
    with zipfile.ZipFile(wheel) as z:
        (metadata,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        assert "License-Expression: MIT" in z.read(metadata).decode()
        assert f"Generator: setuptools ({floor})" in z.read(metadata.replace("METADATA", "WHEEL")).decode()


def test_readme_install_section_names_what_works() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- install -->\n```sh\n(.+?)\n```", readme, re.S)
    assert block is not None
    commands = [line.partition("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["pipx install .", "pip install ."]
    named = set(re.findall(r"\.\[(\w+)\]", readme)) | set(re.findall(r"\.\[(\w+),(\w+)\]", readme)[0])
    assert named == {"postgres", "report"} <= set(PYPROJECT["project"]["optional-dependencies"])
    assert "healthcache import --home demo healthcache/samples/data" in readme
    assert (ROOT / "healthcache" / "samples" / "data").is_dir()
