"""Where a file lives says what it may touch: steps/ holds only entry points, the layers import downward
only (import-linter, configured in pyproject.toml), the domain never imports mlflow, and files stay small."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from plumbing.code import PACKAGES
from tests.helpers import PROJECT_DIR

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_LINES = 250
MAX_STEP_LINES = 120


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=project, capture_output=True, text=True, check=False
    )


def test_the_layers_hold() -> None:
    result = lint_imports(PROJECT_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("demand/metrics.py", "import mlflow", "demand.metrics -> mlflow"),
        ("demand/schema.py", "from plumbing import settings", "demand.schema -> plumbing.settings"),
        ("serving/model.py", "import plumbing.tracking", "serving.model -> plumbing.tracking"),
        ("plumbing/pipeline/cache.py", "from steps import main", "plumbing.pipeline.cache -> steps.main"),
        (
            "plumbing/tuning/pool.py",
            "import plumbing.pipeline.lock",
            "plumbing.tuning.pool -> plumbing.pipeline.lock",
        ),
        (
            "plumbing/spark/scoring.py",
            "import plumbing.tuning.study",
            "plumbing.spark.scoring -> plumbing.tuning.study",
        ),
        (
            "plumbing/tracking.py",
            "import plumbing.pipeline.keys",
            "plumbing.tracking -> plumbing.pipeline.keys",
        ),
    ],
    ids=[
        "domain imports mlflow",
        "domain imports plumbing",
        "serving imports plumbing",
        "plumbing imports steps",
        "tuning imports the pipeline",
        "spark imports tuning",
        "the runtime imports a subsystem",
    ],
)
def test_an_import_against_the_layers_fails_the_check(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    for name in PACKAGES:
        shutil.copytree(PROJECT_DIR / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT_DIR / "pyproject.toml", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout


def test_every_top_level_plumbing_module_is_held_to_the_runtime_contract() -> None:
    contracts = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    (runtime,) = [
        contract
        for contract in contracts
        if contract["type"] == "forbidden" and "plumbing.cli" in contract["source_modules"]
    ]
    modules = {f"plumbing.{path.stem}" for path in (PROJECT_DIR / "plumbing").glob("*.py")} - {
        "plumbing.__init__"
    }
    subsystems = {
        f"plumbing.{path.name}"
        for path in (PROJECT_DIR / "plumbing").iterdir()
        if (path / "__init__.py").is_file()
    }
    assert set(runtime["source_modules"]) == modules
    assert set(runtime["forbidden_modules"]) == subsystems


def test_steps_holds_exactly_one_module_per_entry_point() -> None:
    entry_points = set(yaml.safe_load((PROJECT_DIR / "MLproject").read_text())["entry_points"])
    modules = {path.stem for path in (PROJECT_DIR / "steps").glob("*.py")} - {"__init__"}
    assert modules == entry_points
    assert not [
        path for path in (PROJECT_DIR / "steps").iterdir() if path.is_dir() and path.name != "__pycache__"
    ]


def project_files() -> list[Path]:
    """The files git tracks: what a clean clone holds."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return [PROJECT_DIR / name for name in listed.stdout.split("\0") if name]


def test_no_project_file_is_over_250_lines() -> None:
    lengths = {
        path: len(path.read_text(errors="replace").splitlines())
        for path in project_files()
        if path.is_file() and path.suffix != ".md"  # prose has no cap: a doc is as long as its question
    }
    assert {str(path.relative_to(PROJECT_DIR)): n for path, n in lengths.items() if n > MAX_LINES} == {}


def test_each_step_is_a_thin_cli() -> None:
    lengths = {path.name: len(path.read_text().splitlines()) for path in (PROJECT_DIR / "steps").glob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_STEP_LINES} == {}
