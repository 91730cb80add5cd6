"""The package's layout: one core, jobs that stand on it, composition roots on top.

Read from the source alone (``ast``; nothing of genre_tagger is imported, so this runs
in well under a second):

- no import cycles between modules, function-level imports included;
- a job package (``JOBS``) imports no other job; outside the jobs only the composition
  roots (``cli.py``, ``demo.py``, the ``serve`` app) import jobs; each job's ``commands.py`` belongs to its job;
- nothing outside ``genre_tagger.baselines`` (the benchmarks' reference) imports it: the
  shipped model must not change when a benchmark does;
- no module over ``MAX_MODULE_LINES`` lines, no function over ``MAX_FUNCTION_LINES`` lines
  (the synthetic-catalog generators excepted).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "genre_tagger"
JOBS = ("training", "tagging", "search", "recommend", "audit")
# Composition roots put several jobs together: the CLI, the demo, and the catalog app, whose
# one process answers with the tagging, search and recommendation jobs' own functions.
COMPOSITION_ROOTS = ("genre_tagger.cli", "genre_tagger.demo", "genre_tagger.serve")


def is_composition_root(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in COMPOSITION_ROOTS)
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 70
LONG_FUNCTIONS_ALLOWED_UNDER = ("data/synthetic",)  # matches data/synthetic/ and data/synthetic2/


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


@lru_cache(maxsize=None)
def tree(name: str) -> ast.Module:
    return ast.parse(modules()[name].read_text(encoding="utf-8"))


def imports_of(name: str) -> set[str]:
    """The package's modules that ``name`` imports anywhere in it (top level or in a function).
    ``from pkg import x`` counts as importing the submodule ``pkg.x`` when there is one."""
    known = modules()
    package = name if known[name].name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        out.update(t for t in targets if t in known and t != name)
    return out


def job_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in JOBS else None


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_layout_reader_sees_the_package():
    assert {"genre_tagger.cli", "genre_tagger.training.commands", "genre_tagger.search.commands"} <= set(modules())
    assert "genre_tagger.training.commands" in imports_of("genre_tagger.cli")
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = {name: imports_of(name) for name in modules()}
    assert import_cycles(graph) == []


def test_jobs_stand_on_the_core_not_on_each_other():
    wrong = []
    for name in modules():
        if is_composition_root(name):
            continue
        own = job_of(name)
        for target in sorted(imports_of(name)):
            other = job_of(target)
            if other is not None and other != own:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_every_job_brings_its_commands_module():
    for job in JOBS:
        names = {node.targets[0].id for node in tree(f"genre_tagger.{job}.commands").body
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
        functions = {node.name for node in tree(f"genre_tagger.{job}.commands").body if isinstance(node, ast.FunctionDef)}
        assert "COMMANDS" in names and {"add_parsers", "run"} <= functions, job


def test_nothing_outside_the_benchmark_reference_imports_it():
    wrong = [f"{name} imports {target}" for name in modules() if not name.startswith("genre_tagger.baselines")
             for target in sorted(imports_of(name)) if target.startswith("genre_tagger.baselines")]
    assert wrong == []


def test_no_module_is_too_long():
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}


def test_no_function_is_too_long():
    too_long = {}
    for name, path in modules().items():
        if any(part in path.relative_to(PACKAGE).as_posix() for part in LONG_FUNCTIONS_ALLOWED_UNDER):
            continue
        for node in ast.walk(tree(name)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long[f"{name}.{node.name}"] = length
    assert too_long == {}
