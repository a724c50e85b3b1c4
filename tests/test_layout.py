"""featkit's layout: one subpackage per stage, imports that run one way, no import circles.

The import graph is read from the source (every ``import`` statement, function-level ones
included; those under ``if TYPE_CHECKING:`` are annotations and never run, so they are left out),
not from what happens to be imported at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import featkit

PACKAGE = Path(featkit.__file__).parent
CLI = PACKAGE.parent / "cli"  # installed as featkit.cli

#: Stages, lowest first. A module may import its own stage and the stages of lower rows only.
LAYERS: list[set[str]] = [
    {"featkit.errors", "featkit.version"},
    {"featkit.registry", "featkit.io", "featkit.choices", "featkit.ops", "featkit.runtime", "featkit._lazy", "featkit._moved"},
    {"featkit.losses", "featkit.encoders"},
    {"featkit.data"},
    {"featkit.runs", "featkit.report"},
    {"featkit.features"},
    {"featkit.training", "featkit.tasks"},
    {"featkit"},  # the package itself: the public verbs
    {"featkit.cli"},
    {"featkit.__main__"},  # python -m featkit
]
LAYER_OF = {stage: i for i, row in enumerate(LAYERS) for stage in row}


def module_files(package_dir: Path, name: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package_dir`` (package ``name``)."""
    files = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [name, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(path: Path, module: str, is_package: bool) -> set[str]:
    """Every dotted name ``module`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``files`` it imports."""
    graph = {}
    for module, path in files.items():
        names = imported_names(path, module, path.name == "__init__.py")
        graph[module] = {n for n in names if n in files and n != module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def stage_of(module: str) -> str:
    """``featkit.data.images`` -> ``featkit.data``; ``featkit.io`` -> ``featkit.io``."""
    parts = module.split(".")
    return ".".join(parts[:2])


def featkit_files() -> dict[str, Path]:
    return {**module_files(PACKAGE, "featkit"), **module_files(CLI, "featkit.cli")}


def test_no_module_imports_one_that_imports_it_back():
    cycles = import_cycles(import_graph(featkit_files()))
    assert cycles == [], f"import circles: {cycles}"


def test_every_stage_is_in_the_layer_table():
    stages = {stage_of(m) for m in featkit_files()}
    assert stages - set(LAYER_OF) == set(), "place new stages in LAYERS"


def test_stages_import_only_lower_layers():
    graph = import_graph(featkit_files())
    upward = sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if stage_of(a) != stage_of(b) and LAYER_OF[stage_of(b)] >= LAYER_OF[stage_of(a)]
    )
    assert upward == []


def test_the_library_never_imports_the_cli_typer_or_rich():
    files = module_files(PACKAGE, "featkit")
    offending = sorted(
        f"{module}: {name}"
        for module, path in files.items()
        if stage_of(module) not in ("featkit.cli", "featkit.__main__")
        for name in imported_names(path, module, path.name == "__init__.py")
        if name.split(".")[0] in ("typer", "rich") or name == "featkit.cli" or name.startswith("featkit.cli.")
    )
    assert offending == []


def test_the_checker_finds_a_planted_circle(tmp_path):
    pkg = tmp_path / "planted"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from planted.b import g\n")
    (pkg / "b.py").write_text("def g():\n    from planted import a  # a function-level import closes the circle\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from planted.a import g\n")
    (pkg / "d.py").write_text("from .c import x\n")
    graph = import_graph(module_files(pkg, "planted"))
    assert import_cycles(graph) == [["planted.a", "planted.b"]]
    assert graph["planted.c"] == set(), "annotation-only imports are not edges"
    assert graph["planted.d"] == {"planted.c"}, "relative imports resolve"


def test_no_subpackage_shadows_a_public_verb():
    submodules = {m.split(".")[1] for m in module_files(PACKAGE, "featkit") if m.count(".") >= 1}
    assert submodules & set(featkit.__all__) == set()


def test_old_module_paths_keep_working_for_one_release_with_a_warning():
    old = {  # paths the 0.1 README and plugins named -> where the name lives now
        "featkit.contrast.WarpContrast": "featkit.training.contrast",
        "featkit.descriptors.describe": "featkit.features.descriptors",
        "featkit.descriptors.Whitening": "featkit.runs.whitening",
        "featkit.extraction.extract": "featkit.features.extraction",
        "featkit.extraction.load_encoder": "featkit.runs.models",
        "featkit.checkpoint.load_model": "featkit.runs.models",
        "featkit.pipeline.open_collection": "featkit.data.collections",
        "featkit.shards.write_shards": "featkit.data.shard_writer",
        "featkit.retrieval.search": "featkit.tasks.search",
        "featkit.matching.evaluate_homography": "featkit.tasks.homography",
        "featkit.data.decode_windows": "featkit.data.images",
        "featkit.training.TrainConfig": "featkit.training.config",
    }
    code = "import importlib\n" + "".join(
        f"m = importlib.import_module({path.rsplit('.', 1)[0]!r}); print(getattr(m, {path.rsplit('.', 1)[1]!r}).__module__)\n"
        for path in old
    )
    done = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == list(old.values())
    warned = {line.split("DeprecationWarning: ")[1].split()[0] for line in done.stderr.splitlines() if "DeprecationWarning" in line}
    assert warned == {"featkit.contrast", "featkit.descriptors", "featkit.extraction", "featkit.checkpoint",
                      "featkit.pipeline", "featkit.shards", "featkit.retrieval", "featkit.matching"}  # fmt: skip
