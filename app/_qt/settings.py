"""Persistent user settings (QSettings): window geometry, recent projects, last folders, view options.

All access goes through :class:`Settings` so keys are spelled once.  Tests and
screenshots use an INI file in a temporary folder (``Settings(path=...)``) so
the user's real settings are never touched.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANIZATION = "draem-workstation"
APPLICATION = "DRAEM Inspection Workstation"
MAX_RECENT = 8


class Settings:
    """Typed wrapper over ``QSettings``."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            self._q = QSettings(ORGANIZATION, APPLICATION)
        else:
            self._q = QSettings(str(path), QSettings.Format.IniFormat)

    # ----------------------------------------------------------------- generic
    def value(self, key: str, default=None, type_=None):
        """Read ``key``; ``type_`` (int, float, bool, str) converts INI strings back."""
        v = self._q.value(key, default)
        if v is None or type_ is None:
            return v
        if type_ is bool and isinstance(v, str):
            return v.lower() in ("1", "true", "yes")
        try:
            return type_(v)
        except (TypeError, ValueError):
            return default

    def set_value(self, key: str, value) -> None:
        self._q.setValue(key, value)

    def sync(self) -> None:
        self._q.sync()

    # ----------------------------------------------------------------- window
    def geometry(self) -> QByteArray | None:
        v = self._q.value("window/geometry")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def set_geometry(self, geometry: QByteArray, state: QByteArray | None = None) -> None:
        self._q.setValue("window/geometry", geometry)
        if state is not None:
            self._q.setValue("window/state", state)

    def window_state(self) -> QByteArray | None:
        v = self._q.value("window/state")
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def last_page(self) -> int:
        return int(self.value("window/page", 0, int) or 0)

    def set_last_page(self, index: int) -> None:
        self._q.setValue("window/page", int(index))

    # ----------------------------------------------------------------- projects
    def recent_projects(self) -> list[str]:
        """Recent project folders, newest first, only those that still exist."""
        v = self._q.value("projects/recent", [])
        items = [v] if isinstance(v, str) else list(v or [])
        return [p for p in items if p and (Path(p) / "project.json").is_file()]

    def add_recent_project(self, folder: str | Path) -> None:
        f = str(Path(folder).resolve())
        items = [f] + [p for p in self.recent_projects() if p != f]
        self._q.setValue("projects/recent", items[:MAX_RECENT])

    def clear_recent_projects(self) -> None:
        self._q.setValue("projects/recent", [])

    @property
    def first_start(self) -> bool:
        """True until :meth:`mark_started` was called once."""
        return not self.value("app/started", False, bool)

    def mark_started(self) -> None:
        self._q.setValue("app/started", True)

    # ----------------------------------------------------------------- folders
    def last_folder(self, kind: str) -> str:
        """Last folder used in a file dialog of ``kind`` (e.g. ``images``, ``project``)."""
        v = self.value(f"folders/{kind}", "", str)
        return v if v and Path(v).is_dir() else str(Path.home())

    def set_last_folder(self, kind: str, folder: str | Path) -> None:
        p = Path(folder)
        self._q.setValue(f"folders/{kind}", str(p if p.is_dir() else p.parent))
