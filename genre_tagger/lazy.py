"""Package exports imported on first use.

The CLI imports every job's ``commands`` module to build its parser, and with it the job's
package; a package that imported its heavy modules (torch, Lightning, FastAPI, DuckDB) at
once would make `genre-tagger --help` take seconds. Such a package names its exports and the
submodule each lives in, and Python's module ``__getattr__`` imports them when first asked.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``: ``name`` -> ``package.<exports[name]>.name``,
    imported on first use and then bound in the package (a function of the same name as its
    submodule is the function, not the submodule)."""
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
