"""GUI entry point: ``run_gui(project=None, demo=False) -> int`` (routed from ``main.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

STYLE = Path(__file__).with_name("style.qss")


def check_qt_binding() -> str | None:
    """A readable problem when the Qt binding mis-counts references, else None.

    PySide6 6.12.0 on Python 3.11 drops a reference to ``True`` on every
    ``Signal.emit`` and to ``None`` on every void method, so a session aborts
    with "Fatal Python error: none_dealloc" after a few thousand calls.  The
    probe costs 20 calls (far below the crash point) and changes nothing.
    """
    from PySide6 import __version__ as version
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(20):
        probe.ping.emit()
        probe.setObjectName("probe")
    after = sys.getrefcount(True), sys.getrefcount(None)
    if before[0] - after[0] >= 20 or before[1] - after[1] >= 20:
        return (
            f"PySide6 {version} is broken on Python {sys.version_info.major}.{sys.version_info.minor} "
            "(reference-count errors that crash the application). "
            'Install a working version: pip install "PySide6>=6.6,<6.12"'
        )
    return None


def make_app():
    """The QApplication (created once), with the Fusion style and our stylesheet."""
    from PySide6.QtWidgets import QApplication

    from app._qt.settings import APPLICATION, ORGANIZATION

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setStyle("Fusion")
    if STYLE.is_file():
        app.setStyleSheet(STYLE.read_text(encoding="utf-8"))
    return app


def open_initial_project(window, project=None, demo: bool = False) -> None:
    """A given project, else the demo (first start or ``demo``), else the most recent one."""
    settings, controller = window.settings, window.controller
    if project is not None:
        controller.open(project)
    elif demo or settings.first_start or not settings.recent_projects():
        controller.open_demo()
        window.nav.setCurrentRow(0)
    else:
        controller.open(settings.recent_projects()[0])
    settings.mark_started()


def run_gui(
    project=None, demo: bool = False, *, settings_path=None, quit_after_ms: int | None = None
) -> int:
    """Start the desktop application and block until its window closes.

    Args:
        project: a project folder (or its project.json) to open.
        demo: open the bundled demo project (as on the first start).
        settings_path: an INI file for settings instead of the user's (tests, screenshots).
        quit_after_ms: close the window after this many milliseconds (smoke tests).

    Returns:
        The Qt event loop's exit code (0 on a normal close); 2 when the desktop lacks
        a display or the system libraries Qt needs (the message names them).
    """
    from app.components.desktop_check import desktop_problem

    if (problem := desktop_problem()) is not None:  # before Qt, which would abort the process
        print(problem, file=sys.stderr)
        return 2
    from PySide6.QtCore import QTimer

    from app._qt.main_window import MainWindow
    from app._qt.settings import Settings
    from app.components.warmup import start_warm_up

    app = make_app()
    problem = check_qt_binding()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    window = MainWindow(Settings(settings_path))
    start_warm_up(window)  # model code loads in the background; avoids GC stalls later
    open_initial_project(window, project, demo)
    window.show()
    if quit_after_ms is not None:
        QTimer.singleShot(int(quit_after_ms), window.close)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(run_gui(*sys.argv[1:2]))
