"""The package's shape: no import cycle, and no measured numbers in the code."""

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import skae

PACKAGE = Path(skae.__file__).parent
MODULES = sorted(f"skae.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE)]))

# A number followed by a unit of time below a second, or a page-fault count.
TIMING = re.compile(r"\d[\d.,]*\s*(us|µs|ms|microseconds?|milliseconds?)\b"
                    r"|\d[\d.,]*\s*(minor |major )?page[- ]faults?", re.I)


# Run in a fresh interpreter: the third-party packages are imported once, then
# each skae module is imported first into an empty skae, as a user's script
# would; an import cycle shows up as an ImportError of a partly initialised module.
IMPORT_EACH = """
import importlib, sys, traceback
import numpy, scipy, sklearn, skorch, torch
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "skae" or m.startswith("skae.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_each_module_imports_alone():
    result = subprocess.run([sys.executable, "-c", IMPORT_EACH, "skae", *MODULES],
                            capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_check_catches_a_cycle(tmp_path):
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import B\nA = 1\n")
    (package / "b.py").write_text("from .a import A\nB = 1\n")
    code = IMPORT_EACH.replace('"skae"', '"cyclic"').replace('"skae.', '"cyclic.')
    result = subprocess.run([sys.executable, "-c", code, "cyclic.a"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1 and "cyclic.a" in result.stdout


def _imported_modules(path, package):
    """The package's modules that ``path`` imports, at module level or inside functions."""
    import ast

    names = {p.stem for p in path.parent.glob("*.py")} - {"__init__"}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names
                         if alias.name.startswith(package + "."))
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else node.module or ""
            if node.level and node.module:
                base = f"{package}.{node.module}"
            if base == package:
                # ``from . import name`` reaches a submodule, or the package's
                # own attributes such as __version__, which are not a cycle.
                found.update(f"{package}.{alias.name}" for alias in node.names
                             if alias.name in names)
            elif base.startswith(package + "."):
                found.add(base)
    return found


def _import_cycle(folder, package):
    """One import cycle among the package's modules (lazy imports included), or None."""
    graph = {f"{package}.{p.stem}": _imported_modules(p, package)
             for p in sorted(folder.glob("*.py")) if p.stem != "__init__"}
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return trail[trail.index(target):] + [target]
            if target not in state and (cycle := visit(target, trail + [target])):
                return cycle
        state[module] = "done"
        return None

    for module in graph:
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return None


def test_no_import_cycle_even_through_lazy_imports():
    cycle = _import_cycle(PACKAGE, "skae")
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_lazy_import_cycle_is_caught(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("from .b import B\nA = 1\n")
    (tmp_path / "b.py").write_text("def f():\n    from .a import A\n    return A\n")
    (tmp_path / "c.py").write_text("from . import __version__, a\n")
    assert _import_cycle(tmp_path, "pkg") == ["pkg.a", "pkg.b", "pkg.a"]
    (tmp_path / "b.py").write_text("def f():\n    from . import __version__\n")
    assert _import_cycle(tmp_path, "pkg") is None


def _comments_and_docstrings(path):
    import ast
    import io
    import tokenize

    source = path.read_text()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "lineno", 1), doc


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_timings_in_comments_or_docstrings(path):
    found = [f"{path.name}:{line}: {match.group(0)!r}"
             for line, text in _comments_and_docstrings(path)
             for match in TIMING.finditer(text)]
    assert not found, ("timings and page-fault counts belong in benchmarks/results/ and "
                       "commit messages: " + "; ".join(found))


def test_timing_pattern_catches_what_it_should():
    assert TIMING.search("0.3 ms, 1% of an epoch")
    assert TIMING.search("26 us against 42 us")
    assert TIMING.search("900,000 page faults an epoch")
    assert not TIMING.search("max_iter epochs; see benchmarks/results/speed")
