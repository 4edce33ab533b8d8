"""The layers: no import circle anywhere in edge/, arrows only point down (cli -> service -> stream -> core)."""
import ast
from pathlib import Path

EDGE = Path(__file__).resolve().parents[1] / "edge"
LAYERS = {"cli": 3, "service": 2, "stream": 1}  # everything else under edge/ is the core library (0)


def module_name(path: Path) -> str:
    """edge/stream/sinks/jsonl.py -> edge.stream.sinks.jsonl (a package's __init__ is the package)."""
    parts = path.relative_to(EDGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p) for p in EDGE.rglob("*.py")}


def imports_of(path: Path) -> set:
    """The edge modules a file imports (absolute or relative, at any depth, also inside functions)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "edge"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "edge":
                continue
            for alias in node.names:  # `from . import engines` names a module; `from .x import f` names module x
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
    return found


def graph() -> dict:
    """module -> the edge modules it imports (only names that are modules)."""
    files = {module_name(p): p for p in EDGE.rglob("*.py")}
    return {m: {t for t in imports_of(p) if t in files and t != m} for m, p in files.items()}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def find_circle(edges: dict) -> list:
    """One import circle as a list of modules (first == last), or [] when there is none."""
    state: dict = {}

    def visit(node: str, trail: list) -> list:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                return trail[trail.index(target):] + [target]
            if target not in state:
                circle = visit(target, trail + [target])
                if circle:
                    return circle
        state[node] = "done"
        return []

    for module in sorted(edges):
        if module not in state:
            circle = visit(module, [module])
            if circle:
                return circle
    return []


def test_the_import_graph_has_no_circle():
    assert find_circle(graph()) == []


def test_the_walk_finds_a_circle_when_there_is_one():
    edges = graph()
    edges["edge.detections"] = edges["edge.detections"] | {"edge.stream.pipeline"}  # pipeline -> ... -> detections
    circle = find_circle(edges)
    assert circle[0] == circle[-1] and "edge.detections" in circle and "edge.stream.pipeline" in circle


def test_imports_only_point_down_the_layers():
    upward = sorted(f"{m} -> {t}" for m, targets in graph().items() for t in targets
                    if m not in ("edge", "edge.__main__") and layer(t) > layer(m))
    assert upward == []


def test_nothing_outside_the_cli_imports_the_cli():
    importers = sorted(m for m, targets in graph().items()
                       if not m.startswith("edge.cli") and m != "edge.__main__" and any(t.startswith("edge.cli")
                                                                                         for t in targets))
    assert importers == []
