"""pyproject.toml is the truth about dependencies: every third-party module the code imports is
declared there, nothing declared goes unused, and requirements.txt / constraints.txt only pin it.
Read from the real files and the real environment (the installed distributions say which
distribution provides which module)."""
import re
import sys
import warnings
from importlib import metadata
from pathlib import Path

import pytest
import tomli

with warnings.catch_warnings():  # Rasa's packaging 20.9 calls pyparsing 3 by its deprecated names
    warnings.simplefilter("ignore", DeprecationWarning)
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

from code_imports import imported_names
from conftest import ROOT

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:packaging")

# Declared but never imported, on purpose: what loads it instead.
NOT_IMPORTED = {"psycopg2-binary": "SQLAlchemy loads it from a postgresql:// URL"}


def imported_modules(folder: Path) -> set[str]:
    """Top-level names of the absolute imports in every .py file under `folder`, stdlib left out."""
    local = {p.stem for p in folder.glob("*.py")} | {"ivr", "tests"}
    names = {name.split(".")[0] for path in folder.rglob("*.py") for name in imported_names(path, ROOT)}
    return {n for n in names if n and n not in sys.stdlib_module_names and n not in local}


def providers() -> dict[str, set[str]]:
    """Module name -> the installed distributions that provide it (canonical names). From
    top_level.txt where a wheel has one, else from the files it installed."""
    found: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        tops = (dist.read_text("top_level.txt") or "").split()
        if not tops:
            tops = {Path(str(f)).parts[0].removesuffix(".py") for f in dist.files or ()
                    if not str(f).startswith("..") and ".dist-info" not in str(f)}
        for top in tops:
            found.setdefault(top, set()).add(name)
    return found


def declared() -> dict[str, dict[str, Requirement]]:
    """pyproject's requirements by group: "main", then each optional extra."""
    project = tomli.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"main": project["dependencies"], **project.get("optional-dependencies", {})}
    return {group: {canonicalize_name(Requirement(r).name): Requirement(r) for r in rows}
            for group, rows in groups.items()}


def pins(path: Path) -> dict[str, str]:
    """NAME==VERSION lines of a requirements-style file, by canonical name."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line).groups()
            found[canonicalize_name(name)] = version
    return found


def installed_outside_the_resolver() -> dict[str, str]:
    """What scripts/setup.sh installs with --no-deps, NAME==VERSION, by canonical name."""
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    return {canonicalize_name(n): v for n, v in re.findall(r"--no-deps ([A-Za-z0-9._-]+)==(\S+)", setup)}


def distributions_of(modules: set[str]) -> set[str]:
    """The installed distributions providing `modules`; a module none provides fails the test."""
    by_module = providers()
    unknown = {m for m in modules if m not in by_module}
    assert not unknown, f"imported, yet no installed distribution provides: {sorted(unknown)}"
    return {d for m in modules for d in by_module[m]}


def needed_by(names: set[str]) -> set[str]:
    """`names` and everything they require, as installed (markers evaluated here, no extras)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for row in map(Requirement, requires):
            if row.marker is None or row.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(row.name))
    return seen


def test_every_module_the_code_and_tests_import_is_declared():
    everything = {name for group in declared().values() for name in group}
    by_module = providers()
    for folder in (ROOT / "ivr", ROOT / "tests"):
        modules = imported_modules(folder)
        distributions_of(modules)  # each import is provided by something installed
        missing = {m: sorted(by_module[m]) for m in modules if not by_module[m] & everything}
        assert not missing, f"{folder.name}/ imports modules pyproject.toml does not declare: {missing}"


def test_nothing_declared_goes_unused():
    groups = declared()
    used = distributions_of(imported_modules(ROOT / "ivr"))
    used_by_tests = distributions_of(imported_modules(ROOT / "tests"))
    unused = {name for name in groups["main"] if name not in used and name not in NOT_IMPORTED}
    assert not unused, f"pyproject.toml declares what ivr/ never imports: {sorted(unused)}"
    for extra, requirements in groups.items():
        idle = {name for name in requirements if name not in used | used_by_tests | set(NOT_IMPORTED)}
        assert not idle, f"pyproject.toml's {extra!r} group declares what nothing imports: {sorted(idle)}"


def test_requirements_and_constraints_only_pin_what_pyproject_declares():
    groups = declared()
    requirements, constraints = pins(ROOT / "requirements.txt"), pins(ROOT / "constraints.txt")
    by_setup = installed_outside_the_resolver()
    everything = {name: r for group in groups.values() for name, r in group.items()}
    extra = set(requirements) - set(everything)
    assert not extra, f"requirements.txt pins what pyproject.toml does not declare: {sorted(extra)}"
    for name, requirement in everything.items():
        pinned = requirements.get(name) or by_setup.get(name)
        assert pinned, f"{name} is declared but neither requirements.txt nor scripts/setup.sh pins it"
        assert requirement.specifier.contains(pinned, prereleases=True), \
            f"{name}=={pinned} is outside pyproject.toml's {requirement.specifier}"
        if name in requirements and name in constraints:
            assert constraints[name] == pinned, f"{name}: requirements.txt {pinned}, constraints.txt {constraints[name]}"
    # constraints.txt is a freeze of the whole environment: what no declared package needs is left over
    stale = set(constraints) - needed_by(set(everything))
    assert not stale, f"constraints.txt pins what no declared package needs: {sorted(stale)}"


def test_the_environment_satisfies_pyproject():
    """What `pip check` would say about ivr itself, whatever metadata the editable install holds."""
    for group in declared().values():
        for name, requirement in group.items():
            version = _installed(name)
            assert version, f"{name} is declared but not installed (make setup)"
            assert requirement.specifier.contains(version, prereleases=True), \
                f"{name} {version} is installed; pyproject.toml asks for {requirement.specifier}"


def test_the_python_range_is_the_one_the_code_and_rasa_need():
    project = tomli.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    supported = Requirement(f"python{project['requires-python']}").specifier
    assert "3.8" not in supported and "3.9" in supported and "3.10.13" in supported and "3.11" not in supported, \
        f"requires-python {supported}: the code needs 3.9 (str.removeprefix), Rasa 3.6 runs up to 3.10"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in supported


def _installed(name: str):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
