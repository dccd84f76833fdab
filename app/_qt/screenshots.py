"""Render every workflow of the GUI offscreen, one PNG per view (``python main.py screenshots``).

Everything runs for real on the bundled demo data set, the way a new user meets it:
the demo project is created in a temporary folder (``00_first_start.png`` is what it
opens with), the good images are scanned, simulator samples drawn, and the project
page's one-click "Train a model now" trains the demo's quick compact DRÆM model (so
the loss curves and previews are live ones); the app then inspects the demo test
images and labels them from their folder names by itself.  Nothing is written
outside ``out_dir`` and the temporary folder.

Takes about two to three minutes on a 2-core CPU (most of it the training budget).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

#: (file name, page index) of the views written, in workflow order.
VIEWS = (
    ("01_project.png", 0),
    ("02_good_images.png", 1),
    ("03_synthetic_anomalies.png", 2),
    ("04_training.png", 3),
    ("05_inspection.png", 4),
)
#: The same pages again in a laptop-sized window (1366x768): nothing may be cut off.
LAPTOP_VIEWS = (
    ("06_inspection_1366x768.png", 4),
    ("07_training_1366x768.png", 3),
)
WINDOW_SIZE = (1920, 1080)
LAPTOP_SIZE = (1366, 768)
#: the run's time budget when its settings give none (they do: the demo's cap)
TRAIN_MINUTES = 1.5


def _wait(app, cond, timeout_s: float, what: str) -> None:
    """Process events until ``cond()`` is true; raise TimeoutError naming ``what``."""
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def _settle(app, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _grab(app, window, page: int, path: Path) -> None:
    window.nav.setCurrentRow(page)
    _settle(app)
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}", flush=True)


def main(out_dir: str | os.PathLike = "docs/screenshots") -> int:
    """Write one PNG per workflow view into ``out_dir``; returns 0 on success, 1 on failure."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app._qt.main_window import MainWindow
    from app._qt.settings import Settings
    from app.main import check_qt_binding, make_app

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = make_app()
    if (problem := check_qt_binding()) is not None:
        print(problem, file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="draem-screenshots-"))
    window = MainWindow(Settings(tmp / "settings.ini"))
    try:
        window.resize(*WINDOW_SIZE)
        window.show()
        if not window.controller.open_demo(tmp / "demo-project"):
            print(window.statusBar().currentMessage(), file=sys.stderr)
            return 1
        project = window.adapter.project
        shots = dict((page, out / name) for name, page in VIEWS)

        good = window.good_page
        _wait(app, lambda: len(good.model.infos) == len(project.good_images), 60, "the good images")
        _grab(app, window, 1, shots[1])

        sim = window.simulator_page
        results = []
        sim.preview_ready.connect(results.append)
        sim.controls.fields["anomaly_probability"].setValue(1.0)  # show anomalies on every card
        _wait(
            app,
            lambda: bool(results) and results[-1].config.anomaly_probability == 1.0,
            60,
            "samples",
        )
        _grab(app, window, 2, shots[2])
        project.set_simulator(project.simulator.__class__(), 0)  # back to the paper defaults

        page = window.training_page
        _grab(app, window, 0, out / "00_first_start.png")  # what the demo opens with
        if not window.project_page.quick_train.isVisible():
            print("the demo project offers no quick training", file=sys.stderr)
            return 1
        window.project_page.quick_train.click()  # what a new user clicks
        if not page.is_running():
            print(f"could not start training: {page.state.text()}", file=sys.stderr)
            return 1
        tc = page._job.train_config
        budget_s = 60 * (tc.minutes or TRAIN_MINUTES)
        _wait(
            app, lambda: page.preview.views["prediction"].has_image(), budget_s + 120, "a preview"
        )
        _wait(app, lambda: not page.is_running(), budget_s + 600, "the end of training")
        if project.active() is None:
            print(f"training did not produce a model: {page.state.text()}", file=sys.stderr)
            return 1

        panel = window.inspection
        if not hasattr(panel, "state"):
            print("the inspection view is not available", file=sys.stderr)
            return 1
        n_test = len(project.batches[0].paths)
        _wait(app, lambda: len(panel.state) == n_test and not panel.jobbar.busy, 300, "inspection")
        _settle(app, 1.0)  # labels from the folder names, the page switch
        defect_rows = [i for i in range(len(panel.state)) if panel.state.labels[i] == 1]
        panel.batch.select_row(defect_rows[0] if defect_rows else 0)
        _grab(app, window, 4, shots[4])
        # the Training page once the application has moved on to Inspection by itself (a
        # grab during the run could be overtaken by that switch): the run's whole curves
        _grab(app, window, 3, shots[3])
        _grab(app, window, 0, shots[0])
        window.resize(*LAPTOP_SIZE)
        for name, page_index in LAPTOP_VIEWS:
            _grab(app, window, page_index, out / name)
        return 0
    except (TimeoutError, OSError) as exc:
        print(f"screenshots failed: {exc}", file=sys.stderr)
        return 1
    finally:
        window.close()


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:2]))
