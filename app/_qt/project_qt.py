"""Thin QObject adapter between the Qt-free :class:`app.components.project.Project` and the widgets.

Widgets hold one :class:`ProjectAdapter` and never keep a ``Project`` of their
own: when the user opens another project the adapter swaps it and emits
``project_replaced``; each change of the current project is re-emitted as
``changed(event)`` (``event`` is one of :data:`app.components.project.EVENTS`).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from app.components.project import Project


class ProjectAdapter(QObject):
    """Owns the current project and forwards its change events as Qt signals."""

    changed = Signal(str)
    project_replaced = Signal(object)
    dirty_changed = Signal(bool)

    def __init__(self, project: Project | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._project: Project | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._dirty = False
        if project is not None:
            self.set_project(project)

    @property
    def project(self) -> Project | None:
        return self._project

    def set_project(self, project: Project | None) -> None:
        """Make ``project`` current (or none) and tell every bound widget."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._project = project
        if project is not None:
            self._unsubscribe = project.subscribe(self._on_event)
        self.project_replaced.emit(project)
        self._update_dirty()

    def _on_event(self, event: str) -> None:
        self.changed.emit(event)
        self._update_dirty()

    def _update_dirty(self) -> None:
        dirty = bool(self._project is not None and self._project.dirty)
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirty_changed.emit(dirty)
