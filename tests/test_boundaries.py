"""Architecture boundaries: core never imports Qt, app never imports torch, README == CI."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6", "pyqtgraph")
TORCH_MODULES = ("torch", "torchvision", "timm")


def _top_level_imports(path: Path) -> set[str]:
    """Top-level package names imported anywhere in a file (including inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.split(".")[0])
    return names


def _core_modules() -> list[str]:
    return sorted(
        "core." + p.relative_to(ROOT / "core").with_suffix("").as_posix().replace("/", ".")
        for p in (ROOT / "core").rglob("*.py")
        if p.name != "__init__.py"
    )


def test_core_sources_never_import_qt():
    offenders = {
        str(p.relative_to(ROOT)): sorted(_top_level_imports(p) & set(QT_MODULES))
        for p in (ROOT / "core").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_every_core_module_loads_no_qt():
    mods = _core_modules()
    assert "core.data.images" in mods
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r})\n"
        "print('QT:', bad)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "QT: []" in out.stdout, out.stdout


def test_app_never_imports_torch_directly():
    app = ROOT / "app"
    if not app.is_dir():
        pytest.skip("app/ not present")
    offenders = {
        str(p.relative_to(ROOT)): sorted(_top_level_imports(p) & set(TORCH_MODULES))
        for p in app.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_import_core_is_light():
    code = "import sys, core\nprint(sorted(m for m in ('numpy', 'torch', 'cv2', 'PySide6') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_core_public_names_resolve():
    import core

    for name in core.__all__:
        assert getattr(core, name) is not None, name


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text.split("\n# ", 1)[0]  # everything before the first heading
    return [b.strip() for b in re.findall(r"```(?:bash|sh)?\n(.*?)```", head, flags=re.S)]


def test_readme_starts_with_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("```")
    cmds = _readme_commands()
    assert len(cmds) == 2 and all("\n" not in c for c in cmds), cmds
    assert "main.py demo" in cmds[0] and "pytest" in cmds[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    lines = [ln.strip() for ln in ci.read_text().splitlines()]
    assert lines[0].startswith("#!") and "bash" in lines[0]
    assert "set -euo pipefail" in lines
    assert _readme_commands()[1] in lines


#: where the GUI may import Qt: the views in ``app/_qt`` and the GUI entry point; the
#: Qt-free model and job code lives in ``app/components`` (napari's ``components`` vs ``_qt``)
QT_APP = ("app/_qt", "app/main.py")


def _app_modules_outside_qt() -> list[str]:
    return sorted(
        p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
        for p in (ROOT / "app").rglob("*.py")
        if not any(p.relative_to(ROOT).as_posix().startswith(q) for q in QT_APP)
    )


def test_app_is_split_into_qt_free_components_and_qt_views():
    mods = _app_modules_outside_qt()
    assert "app.components.project" in mods and "app.components.inspection.model" in mods
    assert "app.cli" in mods
    assert not any(m.startswith("app._qt") for m in mods)
    # every Qt import in app/ sits under the listed places
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "app").rglob("*.py")
        if _top_level_imports(p) & set(QT_MODULES)
        and not any(p.relative_to(ROOT).as_posix().startswith(q) for q in QT_APP)
    ]
    assert offenders == []


def test_app_model_and_job_modules_never_import_qt():
    mods = _app_modules_outside_qt()
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        f"print('QT:', sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "QT: []" in out.stdout, out.stdout


def _dynamic_imports(path: Path) -> list[str]:
    """``import_module`` calls whose module is not a literal or a ``core.``-prefixed f-string."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"):
            continue
        arg = node.args[0] if node.args else None
        if isinstance(arg, ast.Constant):
            continue
        if (
            isinstance(arg, ast.JoinedStr)
            and isinstance(arg.values[0], ast.Constant)
            and str(arg.values[0].value).startswith("core.")
        ):
            continue
        bad.append(f"{path.name}:{node.lineno}")
    return bad


def test_core_never_imports_app_not_even_dynamically():
    from core import registry

    offenders = {
        str(p.relative_to(ROOT)): sorted(_top_level_imports(p) & {"app", "main"})
        for p in (ROOT / "core").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    from core import deploy

    # these import from tables checked below, or optional runtime packages by name
    tables = {"core/registry.py", "core/deploy/__init__.py", "core/deploy/export.py"}
    dynamic = [
        d
        for p in (ROOT / "core").rglob("*.py")
        if p.relative_to(ROOT).as_posix() not in tables
        for d in _dynamic_imports(p)
    ]
    assert dynamic == []
    assert all(m.startswith("core.") for m in registry._SPECS.values()), registry._SPECS
    assert all(m.startswith("core.deploy.") for m in deploy._NAMES.values())


def test_no_method_name_is_branched_on_outside_the_registry():
    """``== "draem"`` / ``in ("patchcore", ...)`` style tests belong to the method modules."""
    pattern = re.compile(r"""(==|!=|\bin\b)\s*\(?\s*["'](draem|patchcore|flow)["']""")
    own = {"registry.py"}
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for root in ("core", "app")
        for p in (ROOT / root).rglob("*.py")
        if p.name not in own and "models" not in p.parts
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []
