"""Inspection, labelling and export workflow of the desktop app (inspect, label, export).

Entry point for the main window: :class:`app._qt.inspection.panel.InspectionPanel`.

Layers:
  * Qt-free: ``items`` (records crossing threads), ``model`` (:class:`InspectionState`:
    vectorised verdicts, labels, masks, ``to_dict``/``load_dict``), ``store`` (disk-backed
    maps), ``render`` (LUTs, contours, residuals), ``jobs`` (inspect / export / re-open /
    pixel metrics with ``on_progress`` and ``should_stop``).
  * Qt: ``list_model`` (table model), ``table``, ``viewer``, ``viewer_pane``, ``controls``,
    ``histogram``, ``metrics_box``, ``runner`` (background jobs via ``app._qt.workers.Task``),
    ``session`` and ``panel`` (lays out and wires).
"""
