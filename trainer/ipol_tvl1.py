"""The IPOL TV-L1 optical flow (Sánchez Pérez, Meinhardt-Llopis, Facciolo, "TV-L1 Optical Flow Estimation",
IPOL 2013) in numpy: the flow the MEGC2019 composite's images were made with (STSTNet's README names it).

It is Zach, Pock and Bischof's dual TV-L1 as the IPOL code runs it, which differs from OpenCV's DualTVL1 in ways
that change a micro-expression's sub-pixel flow: both images are scaled together to 0..255 and smoothed
(sigma 0.8) first; each pyramid level is a Gaussian blur then bicubic sampling; warps are Catmull-Rom bicubic,
and a pixel whose 4x4 stencil leaves the image gets no data term; each warp iterates until the mean squared
update is under epsilon^2 (at most 300 times); there is no median filtering.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from edge.perception.flow import centred_gradient


@dataclass(frozen=True)
class Tvl1:
    tau: float = 0.25
    lam: float = 0.15
    theta: float = 0.3
    nscales: int = 5  # at most; fewer where the coarsest level would be under ~16 pixels (the IPOL rule)
    zfactor: float = 0.5
    warps: int = 5
    epsilon: float = 0.01
    max_iterations: int = 300
    presmoothing: float = 0.8

    def as_json(self) -> dict:
        return {"method": "ipol-tvl1", **asdict(self)}


def _cubic(p0, p1, p2, p3, t):
    """Catmull-Rom (Keys, a = -0.5) through p1 (t = 0) and p2 (t = 1)."""
    return p1 + 0.5 * t * (p2 - p0 + t * (2 * p0 - 5 * p1 + 4 * p2 - p3 + t * (3 * (p1 - p2) + p3 - p0)))


def bicubic_at(image: np.ndarray, x: np.ndarray, y: np.ndarray, zero_outside: bool = False) -> np.ndarray:
    """image sampled at (x, y); the stencil is clamped to the image, or the sample is 0 where it had to be."""
    h, w = image.shape
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    tx, ty = x - x0, y - y0
    cols = [np.clip(x0 + k, 0, w - 1) for k in (-1, 0, 1, 2)]
    rows = [np.clip(y0 + k, 0, h - 1) for k in (-1, 0, 1, 2)]
    out = _cubic(*(_cubic(*(image[r, c] for c in cols), tx) for r in rows), ty)
    if zero_outside:
        out = np.where((x < 1) | (x >= w - 2) | (y < 1) | (y >= h - 2), 0.0, out)
    return out


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """The IPOL blur: a kernel of int(5 sigma) + 1 taps each side of the centre, mirrored borders."""
    half = np.exp(-np.arange(int(5 * sigma) + 1) ** 2 / (2 * sigma * sigma))
    kernel = np.r_[half[:0:-1], half]
    kernel /= kernel.sum()
    return cv2.sepFilter2D(image, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)


def _zoom_out(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape
    blurred = gaussian(image, 0.6 * np.sqrt(1.0 / factor ** 2 - 1.0))
    y, x = np.mgrid[0:int(h * factor + 0.5), 0:int(w * factor + 0.5)].astype(np.float64)
    return bicubic_at(blurred, x / factor, y / factor)


def _zoom_in(flow: np.ndarray, w: int, h: int) -> np.ndarray:
    fh, fw = flow.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return bicubic_at(flow, x * fw / w, y * fh / h)


def _forward_gradient(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.zeros_like(u), np.zeros_like(u)
    gx[:, :-1] = u[:, 1:] - u[:, :-1]
    gy[:-1] = u[1:] - u[:-1]
    return gx, gy


def _divergence(px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Minus the adjoint of _forward_gradient (its last column / row are zero)."""
    d = np.zeros_like(px)
    d[:, 0] += px[:, 0]
    d[:, 1:-1] += px[:, 1:-1] - px[:, :-2]
    d[:, -1] -= px[:, -2]
    d[0] += py[0]
    d[1:-1] += py[1:-1] - py[:-2]
    d[-1] -= py[-2]
    return d


def _one_scale(i0, i1, u1, u2, p: Tvl1):
    l_t, taut = p.lam * p.theta, p.tau / p.theta
    i1x, i1y = centred_gradient(i1)  # IPOL's one-sided half differences at the borders are the same
    p11, p12, p21, p22 = (np.zeros_like(i0) for _ in range(4))
    h, w = i0.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    for _ in range(p.warps):
        x, y = gx + u1, gy + u2
        i1w, i1wx, i1wy = (bicubic_at(a, x, y, zero_outside=True) for a in (i1, i1x, i1y))
        grad = i1wx ** 2 + i1wy ** 2
        rho_c = i1w - i1wx * u1 - i1wy * u2 - i0
        flat = grad < 1e-10
        safe = np.where(flat, 1.0, grad)
        error, n = np.inf, 0
        while error > p.epsilon ** 2 and n < p.max_iterations:
            n += 1
            rho = rho_c + i1wx * u1 + i1wy * u2
            step = np.where(rho < -l_t * grad, l_t, np.where(rho > l_t * grad, -l_t, np.where(flat, 0.0, -rho / safe)))
            v1, v2 = u1 + step * i1wx, u2 + step * i1wy
            new1, new2 = v1 + p.theta * _divergence(p11, p12), v2 + p.theta * _divergence(p21, p22)
            error = float(((new1 - u1) ** 2 + (new2 - u2) ** 2).mean())
            u1, u2 = new1, new2
            u1x, u1y = _forward_gradient(u1)
            u2x, u2y = _forward_gradient(u2)
            n1, n2 = 1.0 + taut * np.hypot(u1x, u1y), 1.0 + taut * np.hypot(u2x, u2y)
            p11, p12 = (p11 + taut * u1x) / n1, (p12 + taut * u1y) / n1
            p21, p22 = (p21 + taut * u2x) / n2, (p22 + taut * u2y) / n2
    return u1, u2


def tvl1_flow(i0: np.ndarray, i1: np.ndarray, p: Tvl1 = Tvl1()) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) float64 flow from grey i0 to grey i1 (same shape): i0(x) ~ i1(x + (u, v))."""
    a, b = i0.astype(np.float64), i1.astype(np.float64)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if hi > lo:
        a, b = 255.0 * (a - lo) / (hi - lo), 255.0 * (b - lo) / (hi - lo)
    levels0, levels1 = [gaussian(a, p.presmoothing)], [gaussian(b, p.presmoothing)]
    h, w = a.shape
    nscales = max(1, min(p.nscales, int(1 + np.log(np.hypot(w, h) / 16.0) / np.log(1 / p.zfactor))))
    for _ in range(1, nscales):
        levels0.append(_zoom_out(levels0[-1], p.zfactor))
        levels1.append(_zoom_out(levels1[-1], p.zfactor))
    u1 = u2 = np.zeros_like(levels0[-1])
    for s in range(nscales - 1, -1, -1):
        u1, u2 = _one_scale(levels0[s], levels1[s], u1, u2, p)
        if s:
            fh, fw = levels0[s - 1].shape
            u1, u2 = _zoom_in(u1, fw, fh) / p.zfactor, _zoom_in(u2, fw, fh) / p.zfactor
    return u1, u2
