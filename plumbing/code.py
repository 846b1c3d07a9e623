"""The project's own code that a module runs: its file and every project module it imports, directly or
not (read from the source, nothing imported). Step reuse keys hash a step's code with it, and a logged
model carries exactly the code that scoring runs."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from plumbing.settings import PROJECT_DIR

# The project's own packages: a module's code is its file and every module of these that it imports.
PACKAGES = ("steps", "plumbing", "serving", "demand")


def shipped_files(modules: tuple[str, ...]) -> tuple[str, ...]:
    """The project files `modules` run, as paths relative to the project folder (e.g. demand/models.py)."""
    return tuple(path.relative_to(PROJECT_DIR).as_posix() for path in code_files(*modules))


def module_file(module: str) -> Path:
    """The file of a project module, e.g. demand.models -> <project>/demand/models.py."""
    return PROJECT_DIR.joinpath(*module.split(".")).with_suffix(".py")


@cache
def code_files(*modules: str) -> tuple[Path, ...]:
    """The files of `modules` and of every project module they import, directly or not."""
    found: set[Path] = set()
    pending = [module_file(module) for module in modules]
    while pending:
        path = pending.pop()
        if path in found or not path.is_file():
            continue
        found.add(path)
        pending.extend(_imported_modules(path))
    return tuple(sorted(found))


@cache
def _imported_modules(path: Path) -> tuple[Path, ...]:
    """The project modules `path` imports; each file is parsed once per process."""
    return tuple(_project_imports(path))


def _project_imports(path: Path) -> Iterable[Path]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] in PACKAGES and len(parts) > 1:
                yield module_file(name)
