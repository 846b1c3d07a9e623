"""The README and docs/ say what the code does: the layout names every module, every relative link resolves,
the test command is the one CI runs, the reuse keys are the ones steps/main.py builds, and the data claim
holds (plumbing/data_source.py behaves as written). Fast: no network, no tracking store."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

import pytest

from demand.errors import PipelineError
from plumbing import settings
from plumbing.data_source import DATA_ENV_VAR, fetch_data, uci_download
from tests.helpers import PROJECT_DIR

README = PROJECT_DIR / "README.md"
DOCS = sorted((PROJECT_DIR / "docs").glob("*.md"))
LAYOUT = "## How the code is laid out"
TESTS = "## Tests"
REUSE_KEYS = "## What each step's reuse key covers"
DATA_DOC = "docs/data.md"
OFFLINE_CLAIM = "`BIKE_SHARING_DATA` is an offline copy of the UCI download"
NOT_A_COPY = "is not a copy of the UCI download"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def section(text: str, heading: str) -> str:
    """The text under `heading`, up to the next heading of the same or a higher level."""
    assert f"\n{heading}\n" in f"\n{text}", f"no section {heading!r}"
    rest = f"\n{text}".split(f"\n{heading}\n", 1)[1]
    level = heading.split(" ", 1)[0]
    end = re.search(rf"^#{{1,{len(level)}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def layout_entries() -> dict[str, str]:
    """The layout block: each top-level entry (e.g. `plumbing/`) and the text of its lines."""
    block = re.search(r"^```\n(.*?)^```", section(README.read_text(), LAYOUT), re.MULTILINE | re.DOTALL)
    assert block, "the layout section holds a code block"
    entries: dict[str, str] = {}
    name = ""
    for line in block.group(1).splitlines():
        if line and not line[0].isspace():
            name = line.split()[0]
        entries[name] = entries.get(name, "") + line + "\n"
    return entries


def packages() -> set[str]:
    return {path.name for path in PROJECT_DIR.iterdir() if (path / "__init__.py").is_file()}


def test_the_layout_names_every_package_and_docs() -> None:
    assert {f"{name}/" for name in packages() | {"docs"}} <= set(layout_entries())


def test_the_layout_names_every_step() -> None:
    steps = layout_entries()["steps/"]
    modules = {path.name for path in (PROJECT_DIR / "steps").glob("*.py")} - {"__init__.py"}
    assert {name for name in modules if not re.search(rf"(?<![\w/]){re.escape(name)}\b", steps)} == set()


def test_the_layout_lists_exactly_the_modules_and_subpackages_of_plumbing() -> None:
    plumbing = PROJECT_DIR / "plumbing"
    listed = set(re.findall(r"^  (\S+)", layout_entries()["plumbing/"], re.MULTILINE))
    modules = {path.name for path in plumbing.glob("*.py")} - {"__init__.py"}
    subpackages = {f"{path.name}/" for path in plumbing.iterdir() if (path / "__init__.py").is_file()}
    assert listed == modules | subpackages


def test_every_file_the_layout_names_exists() -> None:
    for entry, text in layout_entries().items():
        folder = PROJECT_DIR / entry.rstrip("/")
        if not entry.endswith("/"):
            assert folder.is_file(), entry
            continue
        files = [path.relative_to(folder).as_posix() for path in folder.rglob("*.py")]
        for name in re.findall(r"[\w*]+\.py\b", text):
            assert any(fnmatch.fnmatch(Path(path).name, name) for path in files), f"{entry}{name}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCED.sub("", path.read_text())
    return {slug(title) for title in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("document", [README, *DOCS], ids=lambda path: path.name)
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in LINK.findall(FENCED.sub("", document.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https://, mailto: ...
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.exists() or (anchor and resolved.suffix == ".md" and anchor not in anchors(resolved)):
            broken.append(target)
    assert broken == []


def test_the_readme_test_command_is_what_ci_runs() -> None:
    block = re.search(r"^```bash\n(.*?)^```", section(README.read_text(), TESTS), re.MULTILINE | re.DOTALL)
    assert block, "the Tests section starts with its commands"
    first = block.group(1).splitlines()[0].split("#", 1)[0].strip()
    assert first == "make test"
    ci = [line.strip() for line in (PROJECT_DIR / ".ci" / "run").read_text().splitlines()]
    assert "make test" in [line.split("#", 1)[0].strip() for line in ci if not line.startswith("#")]
    assert re.search(r"^test:", (PROJECT_DIR / "Makefile").read_text(), re.MULTILINE)


def table_keys(cell: str) -> set[str]:
    return set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", cell)))


def dict_keys(expression: ast.expr) -> set[str]:
    """The keys of the dicts in `expression`; dict(settings.config()["<part>"]) counts as that part's keys."""
    keys: set[str] = set()
    for node in ast.walk(expression):
        if isinstance(node, ast.Dict):
            keys |= {key.value for key in node.keys if isinstance(key, ast.Constant)}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            (argument,) = node.args
            assert isinstance(argument, ast.Subscript) and isinstance(argument.slice, ast.Constant)
            keys |= set(settings.config()[argument.slice.value])
    return keys


def test_the_reuse_key_table_is_what_main_builds() -> None:
    text = section((PROJECT_DIR / "docs" / "reruns.md").read_text(), REUSE_KEYS)
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (.+?) \|$", text, re.MULTILINE)
    documented = {step: (table_keys(params), table_keys(inputs)) for step, params, inputs in rows}
    built = {}
    for node in ast.walk(ast.parse((PROJECT_DIR / "steps" / "main.py").read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run":
            arguments = {keyword.arg: keyword.value for keyword in node.keywords}
            step = node.args[0].value
            built[step] = (dict_keys(arguments["params"]), dict_keys(arguments["inputs"]))
    assert documented == built


def test_the_readme_states_the_offline_copy_claim_and_links_its_details() -> None:
    readme = README.read_text()
    assert OFFLINE_CLAIM in readme
    assert f"]({DATA_DOC})" in readme
    details = (PROJECT_DIR / DATA_DOC).read_text()
    assert OFFLINE_CLAIM in details
    assert NOT_A_COPY in details


def test_an_offline_copy_that_is_not_the_uci_download_fails_in_one_line(
    small_csv: Path, tmp_path: Path
) -> None:
    environ = {DATA_ENV_VAR: str(small_csv), "XDG_CACHE_HOME": str(tmp_path)}
    with pytest.raises(PipelineError, match=NOT_A_COPY) as raised:
        fetch_data(uci_download(), environ)
    assert "\n" not in str(raised.value)
    assert f"pass -P data={small_csv}" in str(raised.value)


def test_the_offline_copy_is_ignored_when_data_names_something_else(small_csv: Path, tmp_path: Path) -> None:
    environ = {DATA_ENV_VAR: str(tmp_path / "no such copy"), "XDG_CACHE_HOME": str(tmp_path)}
    hourly = fetch_data(str(small_csv), environ)
    assert hourly.read_params()["data"] == str(small_csv)
    assert hourly.content == small_csv.read_bytes()
    assert not hourly.pinned
