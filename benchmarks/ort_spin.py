"""ONNX Runtime's thread pool against one thread, on the default artifact: wall time per call and the process's
CPU per call, with a pause between calls as the live infer process has between events.

    .venv/bin/python benchmarks/ort_spin.py [--calls 200] [--pause-ms 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> int:
    import onnxruntime as ort

    from engines import default_artifact_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--pause-ms", type=float, default=2.0)
    args = parser.parse_args()
    configs = {
        "ONNX Runtime's default pool": {},
        "session.intra_op.allow_spinning = 0": {"entry": ("session.intra_op.allow_spinning", "0")},
        "one intra-op thread (OrtEngine's default)": {"threads": 1},
    }
    print(f"{'session':44s} {'p50 wall ms':>11s} {'CPU ms per call':>15s}")
    for name, config in configs.items():
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if "entry" in config:
            options.add_session_config_entry(*config["entry"])
        if "threads" in config:
            options.intra_op_num_threads = config["threads"]
        session = ort.InferenceSession(str(default_artifact_path()), sess_options=options, providers=["CPUExecutionProvider"])
        inputs = {i.name: np.zeros(i.shape, np.float32) for i in session.get_inputs()}
        session.run(None, inputs)
        walls = []
        cpu = time.process_time()
        for _ in range(args.calls):
            t = time.perf_counter()
            session.run(None, inputs)
            walls.append(time.perf_counter() - t)
            time.sleep(args.pause_ms / 1e3)
        cpu_ms = (time.process_time() - cpu) / args.calls * 1e3
        print(f"{name:44s} {np.median(walls) * 1e3:11.3f} {cpu_ms:15.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
