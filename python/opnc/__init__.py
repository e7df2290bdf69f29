"""opnc: set up, check, repair and tear down the Two-way OAuth 2.0 connection between OpenProject
and Nextcloud.

Public names are loaded on first use, so ``import opnc`` stays fast and the sandbox works even
where only the pure-Python part is present.
"""

from __future__ import annotations

import importlib
from pkgutil import extend_path
from typing import Any

# A development build places the compiled extension in <build>/python/opnc; extend_path lets that
# folder join this package when it is on sys.path. An installed package has both in one folder.
__path__ = extend_path(__path__, __name__)

from opnc._version import __version__  # noqa: E402
from opnc.errors import *  # noqa: E402,F401,F403
from opnc.errors import __all__ as _error_names  # noqa: E402

# name -> module that defines it
_LAZY: dict[str, str] = {
    "Secret": "opnc._core",
    "Url": "opnc._core",
    "OpenProject": "opnc.api",
    "Nextcloud": "opnc.api",
    "Integration": "opnc.api",
    "Plan": "opnc.results",
    "ApplyResult": "opnc.results",
    "VerifyResult": "opnc.results",
    "Status": "opnc.results",
    "TeardownResult": "opnc.results",
    "apply_many": "opnc.batch",
    "BatchResult": "opnc.batch",
    "PairResult": "opnc.batch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opnc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["__version__", *_error_names, *_LAZY]
