"""What a Python file imports, read from its syntax tree (nothing is executed): for the tests that
hold the code to its declared dependencies and to its layers."""
import ast
from pathlib import Path


def imported_names(path: Path, package_root: Path) -> set[str]:
    """Every module a file imports, dotted, anywhere in it (a lazy import inside a function counts);
    `from a import b` gives both `a` and `a.b`, and relative imports are resolved from `package_root`
    (the folder holding the top package)."""
    here = list(path.resolve().relative_to(package_root.resolve()).parent.parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[:len(here) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names
