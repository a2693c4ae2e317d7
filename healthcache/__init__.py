"""healthcache: one local, guarded, de-duplicated JSON file of every workout you recorded.

The library is the product; the ``healthcache`` command is a thin layer over it.
"""

from __future__ import annotations

__version__ = "0.1.0"
GENERATOR = f"healthcache {__version__}"

__all__ = ["GENERATOR", "__version__"]
