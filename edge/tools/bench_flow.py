"""TV-L1 accuracy on Middlebury and speed at 128x128, ours (CPU), OpenCV and CUDA: the measurements of
`mestream bench-flow` (edge/commands/bench_flow.py says what they are).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from engines.errors import MestreamError

UNKNOWN_FLOW = 1e9  # Middlebury stores unknown flow as 1.6666668e9; anything above 1e9 is unknown
FACE_VIDEOS = ("videos/evm_face.mp4", "videos/casme2_sub01_EP02_01f.avi")


def read_flo(path: Path):
    """Middlebury .flo -> (H, W, 2) float32 (u right, v down)."""
    import numpy as np

    data = Path(path).read_bytes()
    if data[:4] != b"PIEH":
        raise MestreamError(f"{path} is not a Middlebury .flo file (no PIEH tag); pass flow10.flo")
    w, h = (int(x) for x in np.frombuffer(data[4:12], np.int32))
    return np.frombuffer(data[12:], np.float32).reshape(h, w, 2)


def average_epe(flow, truth) -> float:
    """Mean end-point error over pixels whose ground truth is known."""
    import numpy as np

    known = ~(np.abs(truth) > UNKNOWN_FLOW).any(axis=-1)
    return float(np.sqrt(((flow - truth) ** 2).sum(axis=-1))[known].mean())


def opencv_tvl1(params):
    """OpenCV's DualTVL1 configured with our parameters (None when cv2.optflow is missing)."""
    import cv2

    if not hasattr(cv2, "optflow"):
        return None
    return cv2.optflow.DualTVL1OpticalFlow_create(
        tau=params.tau, lambda_=params.lambda_, theta=params.theta, nscales=params.nscales, warps=params.warps,
        epsilon=params.epsilon, innnerIterations=params.iterations, outerIterations=1,
        scaleStep=params.scale_step, gamma=0.0, medianFiltering=max(params.median, 1), useInitialFlow=False)


def centre_squares(video: Path, count: int, size: int = 128) -> list:
    """The first `count` frames of a video (fewer if it is shorter) as grey (size, size) centre squares."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        h, w = grey.shape
        s = min(h, w)
        y, x = (h - s) // 2, (w - s) // 2
        frames.append(cv2.resize(grey[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def face_pairs(video: Path, count: int, gap: int, size: int = 128):
    """(count, size, size) onset and apex grey crops: centre square of frames t and t + gap."""
    import numpy as np

    frames = centre_squares(video, count + gap, size)
    if len(frames) < gap + 1:
        raise MestreamError(f"{video} gave {len(frames)} frames: need at least {gap + 1} for face pairs")
    n = min(count, len(frames) - gap)
    return np.stack(frames[:n]), np.stack(frames[gap:gap + n])


class _CudaRunner:
    """Owns a context, a stream and CudaTVL1 objects per shape for this benchmark."""

    def __init__(self, params) -> None:
        from edge.perception import flow_cuda

        self.flow_cuda = flow_cuda
        self.params = params
        self.context, self.stream = flow_cuda.open_default_context()
        self.device = self.context.get_device().name()
        self._by_shape = {}

    def get(self, batch: int, h: int, w: int):
        key = (batch, h, w)
        if key not in self._by_shape:
            self._by_shape[key] = self.flow_cuda.CudaTVL1(self.context, self.stream, batch, h, w, self.params)
        return self._by_shape[key]

    def flow(self, prev, nxt):
        tvl1 = self.get(1, *prev.shape)
        cuda = self.flow_cuda._cuda()
        start, end = cuda.Event(), cuda.Event()
        tvl1.upload(prev[None], nxt[None])
        start.record(self.stream)
        tvl1.run(1)
        end.record(self.stream)
        out = tvl1.download_flow(1)[0]
        return out, end.time_since(start) / 1e3

    def close(self) -> None:
        for t in self._by_shape.values():
            t.close()
        self.context.pop()
        self.context.detach()


def batch_sizes(text: str) -> list[int]:
    try:
        batches = [int(b) for b in str(text).split(",") if b.strip()]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        raise MestreamError(f"--batch {text}: expected comma-separated batch sizes >= 1, e.g. 16,64,256")
    return batches


def _open_cuda(mode: str, params):
    if mode == "no":
        return None, "disabled (--cuda no)"
    try:
        return _CudaRunner(params), None
    except MestreamError as exc:
        if mode == "yes":
            raise
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a driver error (no GPU) is reported as "not available"
        if mode == "yes":
            raise MestreamError(f"--cuda yes but the CUDA flow cannot start: {exc}") from exc
        return None, f"{type(exc).__name__}: {exc}"


def measure(root: Path, args) -> dict:
    """Every figure of `mestream bench-flow` (its parsed arguments `args`) on the material under `root`."""
    import cv2

    from edge.perception import flow

    params = flow.TVL1Params()
    cuda, cuda_note = _open_cuda(args.cuda, params)
    ocv = None if args.no_opencv else opencv_tvl1(params)
    result = {
        "params": flow.params_dict(params),
        "opencv": cv2.__version__ if ocv is not None else "not available (cv2.optflow missing or --no-opencv)",
        "cuda": cuda.device if cuda is not None else f"not available: {cuda_note}",
        "middlebury": [],
    }
    try:
        for seq in [s for s in args.sequences.split(",") if s]:
            folder = root / "flow" / seq
            a = cv2.imread(str(folder / "frame10.png"), cv2.IMREAD_GRAYSCALE)
            b = cv2.imread(str(folder / "frame11.png"), cv2.IMREAD_GRAYSCALE)
            if a is None or b is None:
                raise MestreamError(f"{folder} has no readable frame10.png/frame11.png: check --sequences")
            truth = read_flo(folder / "flow10.flo")
            row = {"sequence": seq, "size": list(a.shape)}
            t = time.perf_counter()
            ours = flow.tvl1_flow(a, b, params)
            row["ours_s"] = time.perf_counter() - t
            row["ours_epe"] = average_epe(ours, truth)
            if ocv is not None:
                t = time.perf_counter()
                theirs = ocv.calc(a, b, None)
                row["opencv_s"] = time.perf_counter() - t
                row["opencv_epe"] = average_epe(theirs, truth)
            if cuda is not None:
                gpu, seconds = cuda.flow(a, b)
                row["cuda_s"] = seconds
                row["cuda_epe"] = average_epe(gpu, truth)
                row["cuda_vs_cpu_epe"] = average_epe(gpu, ours)
            result["middlebury"].append(row)
        result["faces"] = _face_speed(root, args, params, ocv, cuda)
    finally:
        if cuda is not None:
            cuda.close()
    return result


def _face_speed(root: Path, args, params, ocv, cuda) -> dict:
    import numpy as np

    from edge.perception import flow

    video = next((root / v for v in FACE_VIDEOS if (root / v).is_file()), None)
    if video is None:
        return {"skipped": f"no face video ({', '.join(FACE_VIDEOS)}) under {root}"}
    prev, nxt = face_pairs(video, max(args.cpu_pairs, 8), args.gap)
    out = {"video": video.name, "size": 128, "gap": args.gap, "pairs": int(len(prev))}
    k = min(args.cpu_pairs, len(prev))
    t = time.perf_counter()
    ours = [flow.tvl1_flow(prev[i], nxt[i], params) for i in range(k)]
    out["ours_ms_per_pair"] = (time.perf_counter() - t) / k * 1e3
    ours_input = [flow.flow_input(prev[i], nxt[i], params) for i in range(k)]
    if ocv is not None:
        t = time.perf_counter()
        for i in range(k):
            ocv.calc(prev[i], nxt[i], None)
        out["opencv_ms_per_pair"] = (time.perf_counter() - t) / k * 1e3
    if cuda is not None:
        drv = cuda.flow_cuda._cuda()
        out["cuda_by_batch"] = []
        for batch in batch_sizes(args.batch):
            idx = np.arange(batch) % len(prev)
            tvl1 = cuda.get(batch, 128, 128)
            flow_gpu, input_gpu = tvl1.compute(prev[idx], nxt[idx])
            out["cuda_vs_cpu_epe"] = float(np.mean([average_epe(flow_gpu[i], ours[i]) for i in range(k)]))
            out["cuda_vs_cpu_input_max_abs"] = float(
                max(np.abs(input_gpu[i] - ours_input[i]).max() for i in range(k)))
            start, end = drv.Event(), drv.Event()
            tvl1.run(batch)  # warm-up of this batch shape
            start.record(cuda.stream)
            for _ in range(args.repeat):
                tvl1.run(batch)
            end.record(cuda.stream)
            end.synchronize()
            seconds = end.time_since(start) / 1e3 / args.repeat
            t = time.perf_counter()
            for _ in range(args.repeat):
                tvl1.upload(prev[idx], nxt[idx])
                tvl1.run(batch)
                tvl1.download_input(batch)
            wall = (time.perf_counter() - t) / args.repeat
            out["cuda_by_batch"].append({"batch": batch, "ms_per_batch": seconds * 1e3, "pairs_per_s": batch / seconds,
                                         "pairs_per_s_with_copies_wall": batch / wall})
        head = out["cuda_by_batch"][-1]
        out["cuda_batch"] = head["batch"]
        out["cuda_ms_per_batch"] = head["ms_per_batch"]
        out["cuda_pairs_per_s"] = head["pairs_per_s"]
        out["cuda_pairs_per_s_with_copies_wall"] = head["pairs_per_s_with_copies_wall"]
        if "opencv_ms_per_pair" in out:
            out["cuda_vs_opencv_speedup"] = out["cuda_pairs_per_s"] * out["opencv_ms_per_pair"] / 1e3
        out["cuda_vs_ours_cpu_speedup"] = out["cuda_pairs_per_s"] * out["ours_ms_per_pair"] / 1e3
    return out


def _fmt(value, spec: str) -> str:
    if isinstance(value, (int, float)):
        return format(value, spec)
    width = spec.split(".")[0]
    return "-".rjust(int(width)) if width.isdigit() else "-"


def print_table(result: dict) -> None:
    print(f"TV-L1 params: {json.dumps({k: v for k, v in result['params'].items() if k != 'form'})}")
    print(f"OpenCV: {result['opencv']}   CUDA: {result['cuda']}")
    print(f"{'sequence':<12} {'ours EPE':>9} {'ours s':>7} {'OpenCV EPE':>11} {'OpenCV s':>9} "
          f"{'CUDA EPE':>9} {'CUDA ms':>8} {'CUDA-CPU':>9}")
    for r in result["middlebury"]:
        cuda_ms = r["cuda_s"] * 1e3 if "cuda_s" in r else None
        print(f"{r['sequence']:<12} {_fmt(r['ours_epe'], '9.3f')} {_fmt(r['ours_s'], '7.2f')} "
              f"{_fmt(r.get('opencv_epe'), '11.3f')} {_fmt(r.get('opencv_s'), '9.2f')} "
              f"{_fmt(r.get('cuda_epe'), '9.3f')} {_fmt(cuda_ms, '8.2f')} {_fmt(r.get('cuda_vs_cpu_epe'), '9.4f')}")
    f = result.get("faces", {})
    if "skipped" in f:
        print(f"face pairs: {f['skipped']}")
        return
    print(f"face pairs 128x128 ({f['video']}, gap {f['gap']}): ours {_fmt(f['ours_ms_per_pair'], '.1f')} ms/pair, "
          f"OpenCV {_fmt(f.get('opencv_ms_per_pair'), '.1f')} ms/pair")
    if "cuda_pairs_per_s" in f:
        print(f"  CUDA batch {f['cuda_batch']}: {f['cuda_pairs_per_s']:.0f} pairs/s ({f['cuda_ms_per_batch']:.2f} ms/batch, "
              f"CUDA events), {f['cuda_pairs_per_s_with_copies_wall']:.0f} pairs/s with copies (wall); "
              f"x{_fmt(f.get('cuda_vs_opencv_speedup'), '.0f')} vs OpenCV, x{f['cuda_vs_ours_cpu_speedup']:.0f} vs ours CPU; "
              f"parity EPE {f['cuda_vs_cpu_epe']:.5f} px, input max |diff| {f['cuda_vs_cpu_input_max_abs']:.4f}")
        for b in f["cuda_by_batch"]:
            print(f"  batch {b['batch']:>4}: {b['pairs_per_s']:8.0f} pairs/s ({b['ms_per_batch']:.2f} ms), "
                  f"{b['pairs_per_s_with_copies_wall']:.0f} with copies")
