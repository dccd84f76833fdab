"""OpenVINO int8 through NNCF's post-training quantisation: AUROC change and speed.

    python benchmarks/probe_nncf_int8.py MODEL.pt DATA EVERY [PRESET]

Exports ``MODEL.pt`` (OpenVINO, fp32), quantises the graph with ``nncf.quantize`` on ~96
preprocessed good training images of ``DATA`` (MVTec layout; fast bias correction,
``PRESET`` mixed by default), evaluates fp32 and int8 on every ``EVERY``-th test image and
times both (and the bf16 hint) on 1024² images at 1 and 2 threads.  Prints what it
measured.  NNCF is not a dependency of the project: install it in a scratch environment
(``pip install nncf``); without it the script says so and exits 2.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    try:
        import nncf
        import openvino as ov
    except ImportError as e:
        print(f"needs nncf and openvino ({e}); pip install nncf")
        return 2
    import cv2

    from core.data.images import load_images, read_mvtec
    from core.deploy.export import export_model
    from core.deploy.runtime import load_exported
    from core.evaluate.inspect import evaluate_mvtec
    from core.registry import load_detector

    ckpt, data, every = sys.argv[1], sys.argv[2], int(sys.argv[3])
    preset = getattr(nncf.QuantizationPreset, (sys.argv[4:] or ["MIXED"])[0].upper())
    out = Path(tempfile.mkdtemp(prefix="nncf-"))
    try:
        export_model(load_detector(ckpt, device="cpu"), out / "fp32", "openvino")
        ref = load_exported(out / "fp32", "openvino")
        cat = read_mvtec(data)
        train = [im for _, im in load_images(list(cat.train[:: max(1, len(cat.train) // 96)]))[0]]
        samples = [ref.preprocess(im)[None] for im in train]
        model = ov.Core().read_model(str(out / "fp32" / "model.xml"))
        t0 = time.perf_counter()
        q = nncf.quantize(model, nncf.Dataset(samples), preset=preset, subset_size=len(samples))
        print(f"quantised in {time.perf_counter() - t0:.1f} s on {len(samples)} images")
        shutil.copytree(out / "fp32", out / "int8")
        ov.save_model(q, str(out / "int8" / "model.xml"))
        test = dataclasses.replace(cat, test=cat.test[::every])
        auroc = {}
        for name in ("fp32", "int8"):
            ev = evaluate_mvtec(load_exported(out / name, "openvino"), test).evaluation
            auroc[name] = (ev.image_auroc, ev.pixel_auroc)
            print(f"{name}: image AUROC {ev.image_auroc:.4f}, pixel AUROC {ev.pixel_auroc:.4f}")
        d_img = abs(auroc["int8"][0] - auroc["fp32"][0])
        d_pix = abs(auroc["int8"][1] - auroc["fp32"][1])
        print(f"change: image {d_img:.4f}, pixel {d_pix:.4f} ({len(test.test)} test images)")
        images = [cv2.resize(im, (1024, 1024)) for im in train[:8]]
        for name, folder, prec in (
            ("fp32", "fp32", "fp32"),
            ("bf16", "fp32", "bf16"),
            ("int8", "int8", "fp32"),
        ):
            for threads in (1, 2):
                det = load_exported(out / folder, "openvino", threads, prec, unmeasured=True)
                det.predict(images[:1])
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    det.predict(images, batch_size=1)
                    times.append(time.perf_counter() - t0)
                ms = 1000 * statistics.median(times) / len(images)
                print(f"speed {name}, {threads} thread(s): {ms:.1f} ms per 1024² image")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
