"""Batched TV-L1 flow, optical strain and the recognition input on the GPU (pycuda + edge/cuda/tvl1.cu).

The same definition as the CPU reference in edge/perception/flow.py (kernels mirror it step for step;
constants come from there), for a window of frame pairs at once: one launch sequence per batch, the
pair index in blockIdx.z. Device buffers are allocated once per (batch, H, W) and reused.

The infer process owns the only CUDA context and one stream (pycuda contexts are per thread): it makes
them, makes the context current, and passes both here. Typical use there:

    tvl1 = CudaTVL1(context, stream, batch=32, height=128, width=128)
    tvl1.upload(onsets, apexes)        # (n, 128, 128) uint8 each, n <= batch; async on the stream
    tvl1.run(n)                        # enqueues every kernel; nothing waits
    engine_input = tvl1.input_ptr      # device pointer of (batch, 3, 28, 28) float32, for TensorRT
    x = tvl1.download_input(n)         # or a host copy (waits for the stream)

`open_default_context()` makes a context and stream for tools and tests that own no other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from edge.perception import flow as ref
from engines.errors import MestreamError
from engines.optional import require

BLOCK = (32, 8, 1)  # 256 threads; 32 wide so that a warp reads one coalesced row segment
# Levels this small run a whole warp's iterations in one block from shared memory (6 floats per pixel,
# 48 KB: the static limit on every target, Orin included); larger ones launch 2 kernels per iteration.
SMEM_LEVEL_PIXELS = 2048
KERNEL_SOURCE = "tvl1.cu"
# Exact float32 parity with numpy needs unfused multiply-adds; the kernels are memory-bound anyway.
NVCC_OPTIONS = ["-fmad=false", "--std=c++14"]


def _cuda():
    return require("pycuda.driver", "gpu", package="pycuda")


def kernel_source() -> str:
    """The CUDA source shipped with the package (edge/cuda/tvl1.cu)."""
    return resources.files("edge").joinpath("cuda", KERNEL_SOURCE).read_text()


def open_default_context(device: int = 0):
    """(context, stream) on `device`, made current in this thread; the caller pops the context when done."""
    cuda = _cuda()
    cuda.init()
    if device >= cuda.Device.count():
        raise MestreamError(
            f"CUDA device {device} does not exist: this machine has {cuda.Device.count()}; pick 0..{cuda.Device.count() - 1}"
        )
    context = cuda.Device(device).make_context()
    return context, cuda.Stream()


@dataclass(frozen=True)
class _Level:
    height: int
    width: int


class CudaTVL1:
    """TV-L1 flow + strain + (3, size, size) recognition input for up to `batch` pairs of (height, width) crops.

    Args:
        context: the pycuda Context that owns the memory; it must be current in the calling thread.
        stream: the pycuda Stream every copy and kernel is queued on.
        batch: most pairs per run; buffers are sized for it.
        height, width: crop size (all pairs share it).
        params: the flow definition (epsilon must be 0: the GPU runs a fixed number of iterations).
        size: side of the recognition input (28 for STSTNet/HTNet).
    """

    def __init__(self, context, stream, batch: int, height: int, width: int,
                 params: ref.TVL1Params = ref.TVL1Params(), size: int = 28) -> None:
        if params.work_size and max(height, width) > params.work_size:
            # the kernels take the crops as uploaded; shrinking them first (flow.shrink_to_work_size) is CPU-only
            raise MestreamError(
                f"TVL1Params.work_size={params.work_size} is not supported on the GPU (crops of {height}x{width} "
                "would have to be shrunk first); use an artifact whose flow has work_size 0, or device = \"cpu\""
            )
        cuda = _cuda()
        from pycuda.compiler import SourceModule

        if params.epsilon != 0:
            raise MestreamError(
                f"TVL1Params.epsilon={params.epsilon} is not supported on the GPU: it runs exactly `iterations` "
                "steps per warp; set epsilon=0 (the default) so CPU and GPU compute the same flow"
            )
        if batch < 1 or height < size or width < size:
            raise MestreamError(
                f"CudaTVL1(batch={batch}, height={height}, width={width}) is invalid: need batch >= 1 and "
                f"crops of at least {size}x{size}"
            )
        if size * size > 4096:
            raise MestreamError(f"size={size} is too large for the input kernel: at most 64")
        current = cuda.Context.get_current()
        if current is None or (context is not None and current.handle != context.handle):
            raise MestreamError(
                "the CUDA context passed to CudaTVL1 is not current in this thread: call context.push() in the "
                "thread that owns it (pycuda contexts are per thread)"
            )
        self._cuda = cuda
        self.context = context
        self.stream = stream
        self.batch, self.height, self.width = batch, height, width
        self.params = params
        self.size = size
        major, minor = cuda.Context.get_device().compute_capability()
        arch = f"sm_{major}{minor}"
        self._module = SourceModule(kernel_source(), options=NVCC_OPTIONS, arch=arch, no_extern_c=True)
        self._prepare_kernels()
        self._levels = [_Level(h, w) for h, w in ref.pyramid_sizes(height, width, params)]
        self._allocate()

    # -- setup -------------------------------------------------------------------------------------

    def _prepare_kernels(self) -> None:
        signatures = {
            "u8_to_f32": "PPi",
            "blur_rows": "PPiiPi",
            "blur_cols": "PPiiPi",
            "resize_bilinear": "PPiiiifffi",
            "centred_gradient": "PPPii",
            "warp_linearise": "PPPPPPPPPPii",
            "update_u": "PPPPPPPPPPffii",
            "update_p": "PPPPPPfii",
            "iterate_level_smem": "PPPPPPPPPPfffiii",
            "median5": "PPii",
            "median3": "PPii",
            "optical_strain": "PPPii",
            "interleave_flow": "PPPii",
            "resize_normalise": "PPPPiiiPPiPPi",
        }
        self._k = {}
        for name, sig in signatures.items():
            fn = self._module.get_function(name)
            fn.prepare(sig)
            self._k[name] = fn

    def _allocate(self) -> None:
        cuda = self._cuda
        b = self.batch
        full = b * self.height * self.width * 4
        self._owned = []

        def alloc(nbytes: int):
            mem = cuda.mem_alloc(max(nbytes, 4))
            self._owned.append(mem)
            return mem

        self._frames_u8 = [alloc(b * self.height * self.width) for _ in range(2)]
        self._host_u8 = [cuda.pagelocked_empty((b, self.height, self.width), np.uint8) for _ in range(2)]
        # kernels get plain integer addresses: packed once per launch, no object lookups in the hot loop
        self._pyr = [[int(alloc(b * lv.height * lv.width * 4)) for lv in self._levels] for _ in range(2)]
        names = ("tmp", "i1x", "i1y", "u1", "u2", "t1", "t2", "p11", "p12", "p21", "p22",
                 "i1wx", "i1wy", "rho_c", "inv_grad", "strain")
        self._buf = {name: int(alloc(full)) for name in names}
        self.flow_gpu = alloc(full * 2)  # (batch, H, W, 2) float32
        self.input_gpu = alloc(b * 3 * self.size * self.size * 4)  # (batch, 3, S, S) float32
        self._host_flow = cuda.pagelocked_empty((b, self.height, self.width, 2), np.float32)
        self._host_input = cuda.pagelocked_empty((b, 3, self.size, self.size), np.float32)

        def upload(array: np.ndarray):
            mem = alloc(array.nbytes)
            cuda.memcpy_htod(mem, np.ascontiguousarray(array))
            return mem

        p = self.params
        self._taps0 = ref.gaussian_taps(p.presmooth_sigma)
        self._tapsp = ref.gaussian_taps(p.pyramid_sigma)
        self._taps0_gpu = upload(self._taps0)
        self._tapsp_gpu = upload(self._tapsp)
        fy, wy = ref.area_weights(self.height, self.size)
        fx, wx = ref.area_weights(self.width, self.size)
        self._area = (upload(fy), upload(wy), wy.shape[1], upload(fx), upload(wx), wx.shape[1])

    # -- public surface ------------------------------------------------------------------------------

    @property
    def flow_ptr(self) -> int:
        """Device address of the (batch, H, W, 2) float32 flow (u, v interleaved)."""
        return int(self.flow_gpu)

    @property
    def input_ptr(self) -> int:
        """Device address of the (batch, 3, size, size) float32 recognition input."""
        return int(self.input_gpu)

    def upload(self, prev: np.ndarray, nxt: np.ndarray) -> int:
        """Queue the copy of (n, H, W) uint8 onset and apex crops; returns n."""
        n = self._check_frames(prev, "prev")
        if self._check_frames(nxt, "nxt") != n:
            raise MestreamError(f"prev holds {n} crops but nxt holds {len(nxt)}: pass one apex crop per onset crop")
        for k, frames in enumerate((prev, nxt)):
            self._host_u8[k][:n] = frames
            self._cuda.memcpy_htod_async(self._frames_u8[k], self._host_u8[k][:n], self.stream)
        return n

    def upload_device(self, prev_ptr: int, nxt_ptr: int, n: int) -> None:
        """Take (n, H, W) uint8 crops already on the device (same context), copied on the stream."""
        nbytes = n * self.height * self.width
        self._cuda.memcpy_dtod_async(self._frames_u8[0], prev_ptr, nbytes, self.stream)
        self._cuda.memcpy_dtod_async(self._frames_u8[1], nxt_ptr, nbytes, self.stream)

    def run(self, n: int) -> None:
        """Queue flow, strain and recognition input for the first n uploaded pairs (returns at once)."""
        if not 1 <= n <= self.batch:
            raise MestreamError(f"run(n={n}) is out of range: this CudaTVL1 holds 1..{self.batch} pairs")
        self._build_pyramids(n)
        b = self._buf
        last = len(self._levels) - 1
        lv = self._levels[last]
        for name in ("u1", "u2"):
            self._cuda.memset_d32_async(b[name], 0, n * lv.height * lv.width, self.stream)
        for level in range(last, -1, -1):
            lv = self._levels[level]
            if level < last:
                coarse = self._levels[level + 1]
                self._resize(b["u1"], b["t1"], coarse, lv, n, np.float32(lv.width / coarse.width))
                self._resize(b["u2"], b["t2"], coarse, lv, n, np.float32(lv.height / coarse.height))
                b["u1"], b["t1"] = b["t1"], b["u1"]
                b["u2"], b["t2"] = b["t2"], b["u2"]
            self._level(level, n)
        self._finish(n)

    def download_flow(self, n: int) -> np.ndarray:
        """Host copy of the flow of the first n pairs, (n, H, W, 2) float32; waits for the stream."""
        self._cuda.memcpy_dtoh_async(self._host_flow[:n], self.flow_gpu, self.stream)
        self.stream.synchronize()
        return self._host_flow[:n].copy()

    def download_input(self, n: int) -> np.ndarray:
        """Host copy of the recognition input of the first n pairs, (n, 3, S, S) float32; waits."""
        self._cuda.memcpy_dtoh_async(self._host_input[:n], self.input_gpu, self.stream)
        self.stream.synchronize()
        return self._host_input[:n].copy()

    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Upload, run and download: ((n, H, W, 2) flow, (n, 3, S, S) input)."""
        n = self.upload(prev, nxt)
        self.run(n)
        return self.download_flow(n), self.download_input(n)

    def close(self) -> None:
        """Free the device memory now (the context stays with its owner)."""
        for mem in self._owned:
            mem.free()
        self._owned = []

    def __enter__(self) -> CudaTVL1:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- steps ---------------------------------------------------------------------------------------

    def _check_frames(self, frames: np.ndarray, name: str) -> int:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[1:] != (self.height, self.width):
            raise MestreamError(
                f"{name} is {frames.dtype} {frames.shape}: expected uint8 (n, {self.height}, {self.width}) grey crops"
            )
        if not 1 <= frames.shape[0] <= self.batch:
            raise MestreamError(f"{name} holds {frames.shape[0]} crops: expected 1..{self.batch} (the batch size)")
        return frames.shape[0]

    def _grid(self, lv: _Level, n: int) -> tuple[int, int, int]:
        return (math.ceil(lv.width / BLOCK[0]), math.ceil(lv.height / BLOCK[1]), n)

    def _launch(self, name: str, grid, *args) -> None:
        self._k[name].prepared_async_call(grid, BLOCK, self.stream, *args)

    def _blur(self, src, dst, lv: _Level, n: int, taps_gpu, ntaps: int) -> None:
        """Blur src in place (dst is scratch)."""
        g = self._grid(lv, n)
        self._launch("blur_rows", g, src, dst, lv.height, lv.width, taps_gpu, ntaps)
        self._launch("blur_cols", g, dst, src, lv.height, lv.width, taps_gpu, ntaps)

    def _resize(self, src, dst, s: _Level, d: _Level, n: int, scale: np.float32 | None) -> None:
        self._launch("resize_bilinear", self._grid(d, n), src, dst, s.height, s.width, d.height, d.width,
                     np.float32(s.height / d.height), np.float32(s.width / d.width),
                     np.float32(1.0 if scale is None else scale), 0 if scale is None else 1)

    def _build_pyramids(self, n: int) -> None:
        lv0 = self._levels[0]
        count = n * lv0.height * lv0.width
        for k in range(2):
            pyr = self._pyr[k]
            self._k["u8_to_f32"].prepared_async_call(
                (math.ceil(count / 256), 1, 1), (256, 1, 1), self.stream, self._frames_u8[k], pyr[0], count)
            if self._taps0.size > 1:
                self._blur(pyr[0], self._buf["tmp"], lv0, n, self._taps0_gpu, self._taps0.size)
            for level in range(1, len(self._levels)):
                prev_lv, lv = self._levels[level - 1], self._levels[level]
                src = pyr[level - 1]
                if self._tapsp.size > 1:  # blur a copy: the finer level itself stays as it is
                    g = self._grid(prev_lv, n)
                    self._launch("blur_rows", g, src, self._buf["tmp"], prev_lv.height, prev_lv.width,
                                 self._tapsp_gpu, self._tapsp.size)
                    self._launch("blur_cols", g, self._buf["tmp"], self._buf["t1"], prev_lv.height, prev_lv.width,
                                 self._tapsp_gpu, self._tapsp.size)
                    src = self._buf["t1"]
                self._resize(src, pyr[level], prev_lv, lv, n, None)

    def _level(self, level: int, n: int) -> None:
        p = self.params
        b = self._buf
        lv = self._levels[level]
        g = self._grid(lv, n)
        h, w = lv.height, lv.width
        i0, i1 = self._pyr[0][level], self._pyr[1][level]
        lt = np.float32(np.float32(p.lambda_) * np.float32(p.theta))
        theta = np.float32(p.theta)
        taut = np.float32(np.float32(p.tau) / np.float32(p.theta))
        self._launch("centred_gradient", g, i1, b["i1x"], b["i1y"], h, w)
        for name in ("p11", "p12", "p21", "p22"):
            self._cuda.memset_d32_async(b[name], 0, n * h * w, self.stream)
        median = {3: "median3", 5: "median5"}.get(p.median)
        for _ in range(p.warps):
            if median:
                self._launch(median, g, b["u1"], b["t1"], h, w)
                self._launch(median, g, b["u2"], b["t2"], h, w)
                b["u1"], b["t1"] = b["t1"], b["u1"]
                b["u2"], b["t2"] = b["t2"], b["u2"]
            self._launch("warp_linearise", g, i0, i1, b["i1x"], b["i1y"], b["u1"], b["u2"],
                         b["i1wx"], b["i1wy"], b["rho_c"], b["inv_grad"], h, w)
            if h * w <= SMEM_LEVEL_PIXELS:
                threads = min(1024, 32 * math.ceil(h * w / 32))
                self._k["iterate_level_smem"].prepared_async_call(
                    (n, 1, 1), (threads, 1, 1), self.stream, b["u1"], b["u2"], b["p11"], b["p12"], b["p21"],
                    b["p22"], b["i1wx"], b["i1wy"], b["rho_c"], b["inv_grad"], lt, theta, taut, h, w,
                    p.iterations, shared_size=6 * 4 * h * w)
                continue
            args_u = (b["u1"], b["u2"], b["p11"], b["p12"], b["p21"], b["p22"], b["i1wx"], b["i1wy"],
                      b["rho_c"], b["inv_grad"], lt, theta, h, w)
            args_p = (b["u1"], b["u2"], b["p11"], b["p12"], b["p21"], b["p22"], taut, h, w)
            update_u, update_p = self._k["update_u"], self._k["update_p"]
            for _ in range(p.iterations):
                update_u.prepared_async_call(g, BLOCK, self.stream, *args_u)
                update_p.prepared_async_call(g, BLOCK, self.stream, *args_p)

    def _finish(self, n: int) -> None:
        b = self._buf
        lv = self._levels[0]
        g = self._grid(lv, n)
        self._launch("optical_strain", g, b["u1"], b["u2"], b["strain"], lv.height, lv.width)
        self._launch("interleave_flow", g, b["u1"], b["u2"], self.flow_gpu, lv.height, lv.width)
        fy, wy, ky, fx, wx, kx = self._area
        self._k["resize_normalise"].prepared_async_call(
            (3, 1, n), (1024, 1, 1), self.stream, b["u1"], b["u2"], b["strain"], self.input_gpu,
            lv.height, lv.width, self.size, fy, wy, ky, fx, wx, kx)
