"""The bundled sample set: two weeks of one athlete's training as devices and services hand it over.

``data/`` holds real files (FIT, GPX, Garmin and Strava account exports, a Polar session, an
Apple Health export) written by ``samples/generate.py`` in the source tree and shipped in the
package, so the demo needs neither an account nor the FIT encoder the tests use:

    healthcache import --home demo "$(python -m healthcache.samples)"
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def path() -> Path:
    """The folder of the sample files, inside the installed package."""
    return Path(str(files(__name__) / "data"))
