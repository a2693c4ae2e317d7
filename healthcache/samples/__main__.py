"""``python -m healthcache.samples``: print where the bundled sample files are, to pass to ``healthcache import``."""

from healthcache.samples import path

print(path())
