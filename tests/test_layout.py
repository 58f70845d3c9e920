"""The package's layout: its imports run one way (data -> cells -> engines -> model -> training -> command
line, as README's map says), there is no import cycle, every entry point speaks through the command-line
toolkit, and the fast engine and the GPU launchers never ask which cell they run."""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scratchrnn"
ROOT = PACKAGE.parent

# Each module's layer; a module may import its own layer or a lower one, never a higher one.
LAYERS = [
    ("base", ["errors", "backend"]),
    ("data", ["data"]),
    ("cells", ["cells", "cells.common", "cells.rnn", "cells.gru", "cells.lstm", "output", "embedding", "dropout",
               "optimizers",
               "optimizers.sgd", "optimizers.momentum", "optimizers.adam", "optimizers.rmsprop"]),
    ("engines", ["engines", "engines.clipping", "engines.reference", "engines.fast", "engines.numba_kernels",
                 "engines.numba_cache",
                 "engines.mkl", "engines.split", "gpu", "gpu.modules", "gpu.ops"]),
    ("model", ["model", "worker"]),
    ("training", ["train", "schedules", "checkpoint", "gradcheck", "torch_baseline"]),
    ("command line", ["cmdline", "book", "cli", "diagnose", "experiments", "selftest", "launch", "__main__",
                      "__init__"]),
]
LAYER_OF = {module: i for i, (_, modules) in enumerate(LAYERS) for module in modules}


def module_name(path):
    name = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def imports_of(path):
    """The package modules a file imports, at its top or inside a function (a lazy import is an import)."""
    name = module_name(path)
    if path.name == "__init__.py":
        package = "" if name == "__init__" else name              # the package itself, or a subpackage
    else:
        package = name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("scratchrnn"):
                target = node.module[len("scratchrnn."):] if node.module != "scratchrnn" else ""
            else:
                continue
            for alias in node.names:                 # `from . import gru` imports the module cells.gru
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(candidate if candidate in LAYER_OF else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("scratchrnn."):
                    found.add(alias.name[len("scratchrnn."):])
    return {m for m in found if m and m != name}


GRAPH = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def upward_imports(graph):
    return [(m, t) for m, targets in graph.items() for t in targets if LAYER_OF[t] > LAYER_OF[m]]


def find_cycle(graph):
    """An import cycle of the graph as a list of modules, or None."""
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return None
        if state.get(module) == "open":
            return path[path.index(module):] + [module]
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            cycle = visit(target, path + [module])
            if cycle:
                return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle:
            return cycle
    return None


def test_every_module_has_a_layer():
    assert set(GRAPH) == set(LAYER_OF), set(GRAPH) ^ set(LAYER_OF)
    for module, targets in GRAPH.items():
        assert targets <= set(LAYER_OF), f"{module} imports {targets - set(LAYER_OF)}"


def test_imports_run_one_way_and_never_in_a_cycle():
    assert upward_imports(GRAPH) == []
    assert find_cycle(GRAPH) is None


def test_the_checks_can_fail():
    """A lazy import of the command line inside model.py, as the graph would record it, is caught by both."""
    source = (PACKAGE / "model.py").read_text() + "\n\ndef f():\n    from .cli import main\n"
    graph = dict(GRAPH)
    path = PACKAGE / "model_with_a_lazy_import.py"
    try:
        path.write_text(source)
        graph["model"] = imports_of(path)
    finally:
        path.unlink()
    assert ("model", "cli") in upward_imports(graph)
    assert find_cycle(graph) is not None


@pytest.mark.parametrize("path", ["engines/fast.py", "gpu/ops.py", "gpu/modules.py", "engines/reference.py",
                                  "model.py", "train.py"])
def test_engines_and_launchers_never_ask_which_cell_they_run(path):
    """Per-cell facts live on the cell modules: no test of a cell's name (== 'lstm', in (...'gru'...), a
    table keyed by cell names) in these files."""
    source = (PACKAGE / path).read_text()
    name = r"""["'](lstm|gru|rnn)["']"""
    assert not re.search(rf"(==|!=|\bin\b)\s*\(?\s*{name}|{name}\s*:", source), path


ENTRY_POINTS = sorted([*ROOT.glob("examples/*.py"), *ROOT.glob("examples/exercises/*.py"),
                       *ROOT.glob("benchmarks/*.py")])


@pytest.mark.parametrize("path", ENTRY_POINTS, ids=[p.name for p in ENTRY_POINTS])
def test_every_entry_point_parses_its_flags_with_the_toolkit(path):
    """A usage error is one line everywhere: each script's flags go through cmdline (directly, or through
    book.py or experiments.py, which use it; launch.book_example loads book.py), never a bare
    argparse.ArgumentParser."""
    source = path.read_text()
    assert "ArgumentParser(" not in source
    assert re.search(r"from scratchrnn\.(cmdline|book|experiments|launch) import", source), path.name
