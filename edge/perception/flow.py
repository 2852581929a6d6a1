"""TV-L1 optical flow, optical strain and the STSTNet/HTNet recognition input: the CPU reference.

This module is THE definition of the flow that mestream feeds its models. The CUDA implementation
(edge/perception/flow_cuda.py, edge/cuda/tvl1.cu) mirrors it operation for operation, in float32 and in
the same order, and takes its constants (Gaussian taps, pyramid sizes, resize weights) from the helpers
here, so the two agree to a few thousandths of a pixel. Change the algorithm here and there together.

Algorithm: the Dual TV-L1 of Zach, Pock and Bischof (2007) as written by Sanchez, Meinhardt-Llopis and
Facciolo, "TV-L1 Optical Flow Estimation", IPOL 2013, with the 5x5 median filter of Wedel et al. (2009):
- both frames are optionally smoothed (Gaussian, `presmooth_sigma`), then a pyramid is built by optional
  Gaussian smoothing (`pyramid_sigma`) and bilinear resampling (pixel centres aligned) down to `min_size`;
- coarse to fine, at each scale: `warps` times, frame 1 and its centred gradient are warped by the
  current flow with bicubic interpolation (Keys, a = -0.75), then `iterations` primal-dual steps run
  (pointwise thresholding of the linearised data term, then the dual update of the TV term with forward
  differences; divergence with backward differences; no data term where the image is flat or the flow
  points outside frame 1); before every warp a median filter removes outliers
  from the flow (as OpenCV's DualTVL1 does, so the last warp's result is not filtered);
  the dual variables start at zero at each scale; the flow is carried to the next finer scale by bilinear
  resampling and multiplied by the size ratio.
- Borders are replicated everywhere (smoothing, resampling, warping, median).

Run `mestream bench-flow` for Middlebury accuracy and speed against OpenCV's DualTVL1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from engines.errors import MestreamError

# Keys' cubic convolution parameter for warping: OpenCV's INTER_CUBIC value, sharper than Catmull-Rom's
# -0.5; it gives lower Middlebury EPE (Venus 0.320 vs 0.348 px with everything else equal).
CUBIC_A = -0.75

# Below this |grad I1|^2 the data term has no direction; the flow is left as it is (IPOL's GRAD_IS_ZERO).
GRAD_IS_ZERO = np.float32(1e-10)

FLOW_FORM = (
    "u, v, optical strain from TV-L1 onset->apex flow on the aligned grey crop; each channel area-resized "
    "to 28x28, min-max scaled per image to 0..255, rounded to uint8, then /255 as float32 (3, 28, 28), "
    "channel order u, v, strain (the STSTNet/HTNet STSNet_whole_norm_u_v_os PNG form)"
)


@dataclass(frozen=True)
class TVL1Params:
    """Every parameter of the flow; the artifact metadata quotes params_dict() verbatim.

    Defaults (the live preset: artifacts record it, `mestream prep` makes training inputs with it, the CPU
    and CUDA paths run it): the IPOL/OpenCV data and coupling weights with a short schedule, 4 pyramid
    levels on a 128x128 crop, 3 warps of 15 iterations. Against REFERENCE_FLOW (5 warps of 30) on real
    aligned face crops it costs 38 instead of 125 CPU ms per 128x128 pair, moves the 3x28x28 input by a
    mean absolute 0.03-0.05 (on 0..1) and changed no label of the default artifact on 29 pairs
    (benchmarks/flow_presets.py); on Middlebury RubberWhale it stays as close to the truth as OpenCV's
    DualTVL1 with the same schedule. Fewer iterations or a working size (work_size) cost more accuracy
    for less time: see that benchmark before choosing another.
    """

    tau: float = 0.25  # dual time step; the primal-dual scheme converges for tau < 0.25 (IPOL 2013)
    lambda_: float = 0.15  # weight of the data term for images on the 0..255 scale: lower = smoother flow
    theta: float = 0.3  # coupling between the TV and the data sub-problems (tightness of u ~ v)
    nscales: int = 5  # pyramid levels at most; fewer when the coarsest would go under min_size
    warps: int = 3  # re-linearisations of the data term per level
    epsilon: float = 0.0  # stop a warp's iterations when mean |du|^2 < epsilon^2; 0 = exactly `iterations`
    iterations: int = 15  # primal-dual iterations per warp (the whole budget when epsilon = 0)
    scale_step: float = 0.5  # size ratio between pyramid levels
    median: int = 5  # median filter size (3 or 5) applied to the flow before every warp; 0 or 1 = none
    presmooth_sigma: float = 0.0  # Gaussian sigma on the input frames (px); 0: smoothing cost Middlebury accuracy
    pyramid_sigma: float = 0.0  # Gaussian sigma before each downsampling; 0 = plain bilinear, as OpenCV's pyramid
    min_size: int = 16  # smallest side of the coarsest level, in pixels
    # flow_input only: crops larger than this are area-shrunk to work_size x work_size before TV-L1
    # (0 = as given). tvl1_flow itself never resizes; the CUDA mirror shrinks on the host the same way.
    work_size: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("tau", self.tau > 0, "> 0"),
            ("lambda_", self.lambda_ > 0, "> 0"),
            ("theta", self.theta > 0, "> 0"),
            ("nscales", isinstance(self.nscales, int) and self.nscales >= 1, "an integer >= 1"),
            ("warps", isinstance(self.warps, int) and self.warps >= 1, "an integer >= 1"),
            ("epsilon", self.epsilon >= 0, ">= 0"),
            ("iterations", isinstance(self.iterations, int) and self.iterations >= 1, "an integer >= 1"),
            ("scale_step", 0 < self.scale_step < 1, "in (0, 1)"),
            ("median", isinstance(self.median, int) and self.median >= 0 and self.median in (0, 1, 3, 5),
             "0, 1, 3 or 5"),
            ("presmooth_sigma", self.presmooth_sigma >= 0, ">= 0"),
            ("pyramid_sigma", self.pyramid_sigma >= 0, ">= 0"),
            ("min_size", isinstance(self.min_size, int) and self.min_size >= 4, "an integer >= 4"),
            ("work_size", isinstance(self.work_size, int) and (self.work_size == 0 or self.work_size >= 16),
             "0 (crops as given) or an integer >= 16"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise MestreamError(
                    f"TVL1Params.{name}={getattr(self, name)!r} is invalid: expected {expected}; "
                    f"use the default {getattr(TVL1Params, name)!r} if unsure"
                )


# The longer schedule the algorithm was validated with (Middlebury EPE at or below OpenCV's DualTVL1):
# the yardstick the live preset (TVL1Params()) is measured against, and what models trained before
# 2026-11-23 recorded.
REFERENCE_FLOW = TVL1Params(warps=5, iterations=30)


def params_dict(params: TVL1Params = TVL1Params()) -> dict:
    """The flow definition as plain JSON-able data, for artifact metadata."""
    return {"algorithm": "tvl1-ipol2013+median", "form": FLOW_FORM, **asdict(params)}


# ---------------------------------------------------------------------------------------------------
# Constants shared with the CUDA implementation (computed once on the host, uploaded as-is).


def gaussian_taps(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian taps, radius ceil(3 sigma), float32; [1.0] for sigma 0."""
    if sigma <= 0:
        return np.ones(1, np.float32)
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return (w / w.sum()).astype(np.float32)


def pyramid_sizes(height: int, width: int, params: TVL1Params) -> list[tuple[int, int]]:
    """(h, w) of every level, finest first."""
    sizes = [(height, width)]
    while len(sizes) < params.nscales:
        h, w = sizes[-1]
        nh, nw = int(h * params.scale_step + 0.5), int(w * params.scale_step + 0.5)
        if min(nh, nw) < params.min_size:
            break
        sizes.append((nh, nw))
    return sizes


def area_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Box-filter (area) resampling from n_in to n_out samples as (first index, weights[n_out, K]).

    Output sample j averages the input interval [j s, (j+1) s), s = n_in / n_out, each input pixel weighted
    by its overlap; this is OpenCV's INTER_AREA for shrinking.
    """
    scale = n_in / n_out
    k = int(math.ceil(scale)) + 1
    first = np.zeros(n_out, np.int32)
    weights = np.zeros((n_out, k), np.float32)
    for j in range(n_out):
        a, b = j * scale, (j + 1) * scale
        i0 = int(math.floor(a))
        first[j] = i0
        for t in range(k):
            i = i0 + t
            overlap = min(b, i + 1) - max(a, i)
            if i < n_in and overlap > 0:
                weights[j, t] = overlap / scale
    return first, weights


# ---------------------------------------------------------------------------------------------------
# Building blocks, each mirrored by one CUDA kernel.


def _clamp_index(n: int, offset: int) -> np.ndarray:
    return np.clip(np.arange(n) + offset, 0, n - 1)


def gaussian_blur(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable blur with replicated borders; taps summed left to right (rows, then columns)."""
    if taps.size == 1:
        return image.copy()
    h, w = image.shape
    r = taps.size // 2
    acc = np.zeros((h, w), np.float32)
    for k in range(taps.size):
        acc += taps[k] * image[:, _clamp_index(w, k - r)]
    out = np.zeros((h, w), np.float32)
    for k in range(taps.size):
        out += taps[k] * acc[_clamp_index(h, k - r), :]
    return out


def _bilinear_coords(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ratio = np.float32(n_in / n_out)
    s = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * ratio - np.float32(0.5)
    i0 = np.floor(s)
    f = (s - i0).astype(np.float32)
    i0 = i0.astype(np.int64)
    return np.clip(i0, 0, n_in - 1), np.clip(i0 + 1, 0, n_in - 1), f


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resampling with pixel centres aligned and replicated borders."""
    h, w = image.shape
    y0, y1, fy = _bilinear_coords(height, h)
    x0, x1, fx = _bilinear_coords(width, w)
    fx = fx[None, :]
    fy = fy[:, None]
    one = np.float32(1.0)
    top = (one - fx) * image[y0][:, x0] + fx * image[y0][:, x1]
    bottom = (one - fx) * image[y1][:, x0] + fx * image[y1][:, x1]
    # fancy indexing above can hand back a Fortran-ordered array; every later op is 3x slower on one
    return np.ascontiguousarray((one - fy) * top + fy * bottom, dtype=np.float32)


def centred_gradient(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(I[x+1] - I[x-1]) / 2 along x and y, borders replicated."""
    h, w = image.shape
    half = np.float32(0.5)
    gx = (image[:, _clamp_index(w, 1)] - image[:, _clamp_index(w, -1)]) * half
    gy = (image[_clamp_index(h, 1), :] - image[_clamp_index(h, -1), :]) * half
    return np.ascontiguousarray(gx), np.ascontiguousarray(gy)


def _cubic_weights(t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keys cubic-convolution weights of taps -1, 0, +1, +2 for fractional offset t (a = CUBIC_A)."""
    a, a2, a3, one = np.float32(CUBIC_A), np.float32(CUBIC_A + 2), np.float32(CUBIC_A + 3), np.float32(1.0)
    t2 = t * t
    t3 = t2 * t
    s = one - t
    s2 = s * s
    s3 = s2 * s
    w0 = a * ((t3 - np.float32(2.0) * t2) + t)
    w1 = (a2 * t3 - a3 * t2) + one
    w2 = (a2 * s3 - a3 * s2) + one
    w3 = a * (t2 - t3)
    return w0, w1, w2, w3


def warp_bicubic(images: tuple[np.ndarray, ...], u1: np.ndarray, u2: np.ndarray) -> list[np.ndarray]:
    """Sample every image at (x + u1, y + u2) with cubic convolution (CUBIC_A), borders replicated."""
    h, w = u1.shape
    xs = np.arange(w, dtype=np.float32)[None, :] + u1
    ys = np.arange(h, dtype=np.float32)[:, None] + u2
    fx0 = np.floor(xs)
    fy0 = np.floor(ys)
    tx = (xs - fx0).astype(np.float32)
    ty = (ys - fy0).astype(np.float32)
    ix = fx0.astype(np.int64)
    iy = fy0.astype(np.int64)
    wx = _cubic_weights(tx)
    wy = _cubic_weights(ty)
    cols = [np.clip(ix + d, 0, w - 1) for d in (-1, 0, 1, 2)]
    rows = [np.clip(iy + d, 0, h - 1) * w for d in (-1, 0, 1, 2)]
    out = []
    for image in images:
        flat = image.ravel()
        acc = np.zeros((h, w), np.float32)
        for j in range(4):
            r = rows[j]
            line = wx[0] * flat[r + cols[0]]
            line += wx[1] * flat[r + cols[1]]
            line += wx[2] * flat[r + cols[2]]
            line += wx[3] * flat[r + cols[3]]
            acc += wy[j] * line
        out.append(acc)
    return out


def median_filter(field: np.ndarray, size: int) -> np.ndarray:
    """Median over a size x size window (3 or 5) with replicated borders: the exact middle order statistic.

    OpenCV's medianBlur computes exactly that for float32 (a sorting network), as the CUDA kernel does.
    """
    if size <= 1:
        return field
    import cv2

    return cv2.medianBlur(np.ascontiguousarray(field, np.float32), size)


# ---------------------------------------------------------------------------------------------------
# The flow.


def to_grey_float(image: np.ndarray, name: str) -> np.ndarray:
    """uint8 or float grey (H, W) on the 0..255 scale -> float32; anything else is a user mistake."""
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise MestreamError(
            f"{name} has shape {arr.shape}: expected a grey (H, W) image; convert colour frames with "
            "cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) first"
        )
    if arr.dtype == np.uint8 or np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise MestreamError(f"{name} has dtype {arr.dtype}: expected uint8 or float grey on the 0..255 scale")


def tvl1_flow(prev: np.ndarray, nxt: np.ndarray, params: TVL1Params = TVL1Params()) -> np.ndarray:
    """Dense flow from `prev` to `nxt`: (H, W, 2) float32, u right and v down (Middlebury convention).

    Pixel (x, y) of `prev` is at (x + u, y + v) in `nxt`. Inputs: grey uint8, or float on the 0..255 scale
    (lambda_ assumes that scale).
    """
    i0 = to_grey_float(prev, "prev")
    i1 = to_grey_float(nxt, "nxt")
    if i0.shape != i1.shape:
        raise MestreamError(f"frames differ in size: prev {i0.shape} vs nxt {i1.shape}; pass two crops of one size")
    if min(i0.shape) < 2:
        raise MestreamError(f"frames of shape {i0.shape} are too small for optical flow: need at least 2x2")

    taps0 = gaussian_taps(params.presmooth_sigma)
    tapsp = gaussian_taps(params.pyramid_sigma)
    sizes = pyramid_sizes(*i0.shape, params)
    pyr0, pyr1 = [gaussian_blur(i0, taps0)], [gaussian_blur(i1, taps0)]
    for h, w in sizes[1:]:
        pyr0.append(resize_bilinear(gaussian_blur(pyr0[-1], tapsp), h, w))
        pyr1.append(resize_bilinear(gaussian_blur(pyr1[-1], tapsp), h, w))

    h, w = sizes[-1]
    u1 = np.zeros((h, w), np.float32)
    u2 = np.zeros((h, w), np.float32)
    for level in range(len(sizes) - 1, -1, -1):
        if level < len(sizes) - 1:
            h, w = sizes[level]
            ch, cw = u1.shape
            u1 = resize_bilinear(u1, h, w) * np.float32(w / cw)
            u2 = resize_bilinear(u2, h, w) * np.float32(h / ch)
        u1, u2 = _tvl1_level(pyr0[level], pyr1[level], u1, u2, params)
    return np.stack([u1, u2], axis=-1)


def _tvl1_level(
    i0: np.ndarray, i1: np.ndarray, u1: np.ndarray, u2: np.ndarray, params: TVL1Params
) -> tuple[np.ndarray, np.ndarray]:
    """Warps and primal-dual iterations at one scale, from the initial flow (u1, u2).

    u1/u2 and the four dual fields are stacked ((2, H, W) and (2, 2, H, W)) so that numpy makes half as
    many calls; element for element the arithmetic is the CUDA kernels' (warp_linearise, update_u, update_p).
    """
    f32 = np.float32
    lt = f32(f32(params.lambda_) * f32(params.theta))
    theta = f32(params.theta)
    taut = f32(f32(params.tau) / f32(params.theta))
    one = f32(1.0)
    h, w = i0.shape
    i1x, i1y = centred_gradient(i1)
    u = np.ascontiguousarray(np.stack([u1, u2]))  # (2, H, W)
    p = np.zeros((2, 2, h, w), np.float32)  # p[c, d]: dual of component c, derivative along d (x, y)
    div = np.empty_like(u)
    g = np.zeros((2, 2, h, w), np.float32)
    ng = np.empty_like(u)
    for _ in range(params.warps):
        if params.median > 1:
            # outliers out before the iterations and not after the last warp, as OpenCV's DualTVL1 does
            u[0] = median_filter(u[0], params.median)
            u[1] = median_filter(u[1], params.median)
        i1w, i1wx, i1wy = warp_bicubic((i1, i1x, i1y), u[0], u[1])
        grad = i1wx * i1wx + i1wy * i1wy
        rho_c = ((i1w - i1wx * u[0]) - i1wy * u[1]) - i0
        # no data term where the image is flat or the flow points outside frame 1: a replicated border
        # there is not evidence (this is what takes Venus from 0.320 to 0.311 px, below OpenCV's 0.316)
        xs = np.arange(w, dtype=np.float32)[None, :] + u[0]
        ys = np.arange(h, dtype=np.float32)[:, None] + u[1]
        flat = (grad <= GRAD_IS_ZERO) | (xs < 0) | (xs > w - 1) | (ys < 0) | (ys > h - 1)
        # 1/|grad I1|^2, and 0 there so that the data step vanishes
        inv_grad = np.where(flat, f32(0.0), one / np.where(flat, one, grad))
        neg_gi = np.stack([-i1wx, -i1wy])  # (2, H, W)
        for _ in range(params.iterations):
            rho = (rho_c + i1wx * u[0]) + i1wy * u[1]
            # pointwise minimiser of the linearised data term: the step onto rho = 0, at most lt |grad I1|
            t = np.minimum(np.maximum(rho * inv_grad, -lt), lt)
            prev = u.copy() if params.epsilon > 0 else None
            # divergence: backward differences with p[-1] = 0 (p's last column/row stays 0 by construction)
            np.copyto(div, p[:, 0])
            div[:, :, 1:] -= p[:, 0, :, :-1]
            div += p[:, 1]
            div[:, 1:, :] -= p[:, 1, :-1, :]
            div *= theta
            u += neg_gi * t
            u += div
            # forward differences, 0 on the last column/row
            np.subtract(u[:, :, 1:], u[:, :, :-1], out=g[:, 0, :, :-1])
            np.subtract(u[:, 1:, :], u[:, :-1, :], out=g[:, 1, :-1, :])
            np.multiply(g[:, 0], g[:, 0], out=ng)
            ng += g[:, 1] * g[:, 1]
            np.sqrt(ng, out=ng)
            ng *= taut
            ng += one
            g *= taut
            p += g
            p /= ng[:, None]
            if prev is not None:
                change = float(np.mean(((u - prev) ** 2).sum(axis=0)))
                if change < params.epsilon**2:
                    break
    return u[0], u[1]


# ---------------------------------------------------------------------------------------------------
# Optical strain and the recognition input.


def _central_difference(c: np.ndarray, axis: int) -> np.ndarray:
    """np.gradient's rule: (c[i+1] - c[i-1]) / 2 inside, one-sided differences on the borders."""
    c = np.moveaxis(c, axis, -1)
    d = np.empty_like(c)
    half = np.float32(0.5)
    d[..., 1:-1] = (c[..., 2:] - c[..., :-2]) * half
    d[..., 0] = c[..., 1] - c[..., 0]
    d[..., -1] = c[..., -1] - c[..., -2]
    return np.moveaxis(d, -1, axis)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Magnitude of the strain tensor of a (H, W, 2) flow: sqrt(ux^2 + vy^2 + 0.5 (uy + vx)^2), float32."""
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2 or min(flow.shape[:2]) < 2:
        raise MestreamError(f"flow has shape {flow.shape}: expected (H, W, 2) with H, W >= 2 from tvl1_flow")
    u, v = flow[..., 0], flow[..., 1]
    ux = _central_difference(u, 1)
    uy = _central_difference(u, 0)
    vx = _central_difference(v, 1)
    vy = _central_difference(v, 0)
    s = uy + vx
    return np.sqrt((ux * ux + vy * vy) + np.float32(0.5) * (s * s)).astype(np.float32)


def resize_area(channel: np.ndarray, size: int) -> np.ndarray:
    """Area (box) shrink of one (H, W) channel to (size, size): rows first, then columns, taps in order."""
    h, w = channel.shape
    if size > min(h, w):
        raise MestreamError(f"cannot shrink a {h}x{w} flow to {size}x{size}: crops must be at least {size} px")
    fy, wy = area_weights(h, size)
    fx, wx = area_weights(w, size)
    rows = np.zeros((size, w), np.float32)
    for t in range(wy.shape[1]):
        rows += wy[:, t, None] * channel[np.minimum(fy + t, h - 1)]
    out = np.zeros((size, size), np.float32)
    for t in range(wx.shape[1]):
        out += wx[None, :, t] * rows[:, np.minimum(fx + t, w - 1)]
    return out


def shrink_to_work_size(image: np.ndarray, work_size: int) -> np.ndarray:
    """A grey float32 (H, W) crop with each side over `work_size` area-shrunk to it (0 = unchanged).

    The flow's cost grows with the pixel count, and the 28x28 input averages ~4.6x4.6 pixels of a 128 crop
    anyway. Area weights as resize_area (OpenCV's INTER_AREA), taps summed in order: the CUDA path
    (edge/perception/flow_cuda.py) calls this very function on the host before its upload.
    """
    h, w = image.shape
    if not work_size or (h <= work_size and w <= work_size):
        return image
    out = np.asarray(image, np.float32)
    if h > work_size:
        fy, wy = area_weights(h, work_size)
        rows = np.zeros((work_size, w), np.float32)
        for t in range(wy.shape[1]):
            rows += wy[:, t, None] * out[np.minimum(fy + t, h - 1)]
        out, h = rows, work_size
    if w > work_size:
        fx, wx = area_weights(w, work_size)
        cols = np.zeros((h, work_size), np.float32)
        for t in range(wx.shape[1]):
            cols += wx[None, :, t] * out[:, np.minimum(fx + t, w - 1)]
        out = cols
    return np.ascontiguousarray(out, np.float32)


def quantise_minmax(channel: np.ndarray) -> np.ndarray:
    """Min-max scale to 0..255, round half to even, then /255: the uint8 PNG values as float32.

    A constant channel (no motion at all) becomes zeros.
    """
    lo = channel.min()
    hi = channel.max()
    if not hi > lo:
        return np.zeros_like(channel, np.float32)
    scaled = ((channel - lo) * np.float32(255.0)) / (hi - lo)
    return (np.rint(scaled) / np.float32(255.0)).astype(np.float32)


def flow_input(
    onset_crop: np.ndarray, apex_crop: np.ndarray, params: TVL1Params = TVL1Params(), size: int = 28
) -> np.ndarray:
    """The STSTNet/HTNet recognition input from two aligned grey crops: (3, size, size) float32 in [0, 1].

    Channels u, v, strain of the onset->apex TV-L1 flow. Each channel is area-resized to size x size, then
    min-max scaled per image and per channel to 0..255 and rounded to uint8, and divided by 255: exactly
    the values a trainer gets from the composite PNGs (`STSNet_whole_norm_u_v_os/*.png` read as RGB
    bytes / 255). Those 442 PNGs have min 0 and max 255 in every channel and about one pixel at each
    extreme (so the scaling comes after the resize, per channel, with rounding), the strain channel
    included (its mean sits near 25/255 because strain is skewed towards zero).
    """
    if params.work_size and size > params.work_size:
        raise MestreamError(
            f"TVL1Params.work_size={params.work_size} is under the input side {size}: the flow would have to be "
            f"enlarged; use work_size 0 or >= {size}"
        )
    onset = shrink_to_work_size(to_grey_float(onset_crop, "onset_crop"), params.work_size)
    apex = shrink_to_work_size(to_grey_float(apex_crop, "apex_crop"), params.work_size)
    flow = tvl1_flow(onset, apex, params)
    strain = optical_strain(flow)
    channels = (flow[..., 0], flow[..., 1], strain)
    return np.stack([quantise_minmax(resize_area(c, size)) for c in channels]).astype(np.float32)
