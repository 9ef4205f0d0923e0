"""The house in wings (STYLE.md): every module sits in a wing, imports point down, no circles.

Reads the source of every module in the package (imports inside functions too, since a lazy
import is still a dependency) and checks it against the one table below.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "synth"

# wing -> the wings it may import (besides itself). Faces on top, then play, then learn and
# sound side by side, then what a song is, then the two modules everything may use.
BELOW = {
    "errors": set(),
    "files": {"errors"},
    "music": {"files", "errors"},
    "learn": {"music", "files", "errors"},
    "sound": {"music", "files", "errors"},
    "play": {"learn", "sound", "music", "files", "errors"},
    "api": {"play", "learn", "sound", "music", "files", "errors"},
    "studio": {"api", "play", "learn", "sound", "music", "files", "errors"},
    "cli": {"studio", "api", "play", "learn", "sound", "music", "files", "errors"},
}
PACKAGE_FRONT = "synth"  # synth/__init__.py: the lazy front door, above everything
TENSORFLOW = ("tensorflow", "keras")
# the homes of TensorFlow: training and its parts (never on a compose or live path)
TRAINING = {"synth.learn.train", "synth.learn.network", "synth.learn.batches",
            "synth.learn.checkpoints", "synth.learn.runtime"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(synth modules, other top-level packages) that the file imports anywhere in it."""
    ours, others = set(), set()
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            # `from synth.x import y` names module synth.x.y when there is one
            targets = [f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            (ours if target.split(".")[0] == "synth" else others).add(
                target if target.split(".")[0] == "synth" else target.split(".")[0])
    ours.discard(name)
    return ours, others


def wing(name: str) -> str:
    if name == PACKAGE_FRONT:
        return PACKAGE_FRONT
    return name.split(".")[1]


def test_every_module_sits_in_a_wing():
    loose = [name for name in modules() if wing(name) not in BELOW and name != PACKAGE_FRONT]
    assert not loose, f"modules outside the wings of STYLE.md: {loose}"


def test_every_wing_says_what_it_holds_and_may_import():
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and "import" in doc.splitlines()[0].lower(), f"{folder.name}/__init__.py"


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_point_down(name):
    if name == PACKAGE_FRONT:
        return
    ours, _ = imports(modules()[name])
    own = wing(name)
    up = sorted(m for m in ours if wing(m) != own and wing(m) not in BELOW[own])
    assert not up, f"{name} ({own}) imports {up}, which sit above or beside it"


def test_no_circles_between_modules():
    graph = {name: imports(path)[0] & set(modules()) for name, path in modules().items()}
    # a package's own __init__ importing its modules is how a package exports them, not a circle
    graph = {n: {m for m in deps if not n.startswith(m + ".") and not m.startswith(n + ".")}
             for n, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_tensorflow_lives_in_training_alone():
    users = sorted(name for name, path in modules().items()
                   if set(TENSORFLOW) & imports(path)[1])
    assert users and set(users) <= TRAINING, users


def test_the_checker_sees_an_import_that_points_up(tmp_path, monkeypatch):
    """The rule can fail: a music module importing the live loop is caught."""
    fake = tmp_path / "synth"
    (fake / "music").mkdir(parents=True)
    (fake / "play").mkdir()
    for init in (fake / "__init__.py", fake / "music" / "__init__.py", fake / "play" / "__init__.py"):
        init.write_text('"""x. Imports nothing."""\n')
    (fake / "play" / "live.py").write_text("")
    (fake / "music" / "notes.py").write_text("def f():\n    from synth.play import live\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    ours, _ = imports(fake / "music" / "notes.py")
    assert ours == {"synth.play.live"}
    with pytest.raises(AssertionError, match="sit above"):
        test_imports_point_down("synth.music.notes")
