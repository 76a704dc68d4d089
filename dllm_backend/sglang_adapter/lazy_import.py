"""`when_imported(module, callback)`: run a callback once a module has been imported.

The plugin runs in every SGLang process, including ones that never import the dLLM
algorithm package or the model registry (each costs tens of seconds to import here).
Rather than importing them to register into them, the plugin defers each registration to
the moment SGLang itself imports the module (or runs it at once if it already has).
"""
from __future__ import annotations

import importlib.abc
import sys
from types import ModuleType
from typing import Callable

Callback = Callable[[ModuleType], None]
_pending: dict[str, list[Callback]] = {}


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of a watched module so that its callbacks run after it executes."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _pending:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original_exec(module)
            _run(fullname, module)

        spec.loader = _WrappedLoader(loader, exec_module)
        return spec


class _WrappedLoader(importlib.abc.Loader):
    def __init__(self, inner, exec_module) -> None:
        self._inner = inner
        self.exec_module = exec_module

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def __getattr__(self, name):  # get_source, is_package, ... of the real loader
        return getattr(self._inner, name)


_FINDER = _Finder()


def _run(name: str, module: ModuleType) -> None:
    for callback in _pending.pop(name, []):
        callback(module)


def when_imported(name: str, callback: Callback) -> None:
    """Calls `callback(module)` now if `name` is imported, else right after its import."""
    module = sys.modules.get(name)
    if module is not None and name not in _pending:
        callback(module)
        return
    _pending.setdefault(name, []).append(callback)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
