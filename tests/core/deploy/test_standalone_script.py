"""The standalone scoring script of docs/deploy.md gives the torch detector's score and map."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from core.deploy import export_model

DOC = Path(__file__).resolve().parents[3] / "docs" / "deploy.md"


def _script() -> str:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"<!-- standalone-script -->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/deploy.md lost its standalone script"
    return m.group(1)


def test_script_is_short_and_free_of_project_imports():
    code = _script()
    assert len(code.splitlines()) <= 50
    imports = re.findall(r"^import (.+)$|^from (\S+) import", code, re.M)
    names = {n.strip() for a, b in imports for n in (a or b).split(",")}
    assert names <= {"json", "math", "sys", "cv2", "numpy as np", "onnxruntime as ort"}


def _run(folder: Path, image: np.ndarray, tmp: Path) -> tuple[float, str, np.ndarray]:
    script = tmp / "score.py"
    script.write_text(_script(), encoding="utf-8")
    png = tmp / "img.png"
    cv2.imwrite(str(png), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    out = subprocess.run(
        [sys.executable, str(script), str(folder), str(png)],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    score, verdict = out.stdout.split()
    return float(score), verdict, np.load(tmp / "map.npy")


def test_script_matches_torch(
    compact_detector, patchcore_detector, flow_detector, demo_images, tmp_path
):
    _, test = demo_images
    image = test[-1]  # the odd-sized one
    dets = (("compact", compact_detector[0]), ("pc", patchcore_detector), ("flow", flow_detector))
    for name, det in dets:
        folder = tmp_path / name
        export_model(det, folder, "onnx")
        (ref,) = det.predict([image])
        work = tmp_path / f"{name}_run"
        work.mkdir()
        score, verdict, amap = _run(folder, image, work)
        assert abs(score - ref.score) <= 1e-4 * max(1.0, abs(ref.score))
        assert verdict == ("NG" if ref.score >= det.thresholds.image else "OK")
        assert amap.shape == ref.anomaly_map.shape
        assert float(np.abs(amap - ref.anomaly_map).max()) <= 1e-3


def test_script_follows_the_flow_manifest_of_an_enlarging_config(
    flow_detector_enlarged, demo_images, tmp_path
):
    """The manifest spells out the config's sizing (enlarge, stages), and the script,
    reading only the manifest, enlarges small images as the torch detector does."""
    from core.deploy import read_manifest
    from core.models.flow.features import flow_working_size

    det = flow_detector_enlarged
    folder = tmp_path / "flow"
    export_model(det, folder, "onnx")
    man = read_manifest(folder)
    assert man["working_size"]["enlarge"] is True
    assert man["working_size"]["work_area"] == 128 and man["working_size"]["stride"] == 16
    assert man["feature_strides"] == [16, 32]
    _, test = demo_images
    small = np.ascontiguousarray(test[0][:60, :90])  # working size 112x160: enlarged
    odd = np.ascontiguousarray(test[0][:100, :140])  # 112x144: not a multiple of stage 32
    for i, image in enumerate((small, odd)):
        H, W = flow_working_size(*image.shape[:2], det.config)
        assert image.shape[0] < H and image.shape[1] < W  # enlarged
        (ref,) = det.predict([image])
        work = tmp_path / f"run{i}"
        work.mkdir()
        score, _, amap = _run(folder, image, work)
        assert amap.shape == ref.anomaly_map.shape
        assert abs(score - ref.score) <= 1e-4 * max(1.0, abs(ref.score))
        assert float(np.abs(amap - ref.anomaly_map).max()) <= 1e-3
