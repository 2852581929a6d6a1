"""The IPOL TV-L1 flow that `mestream prep --form megc2019` runs (the composite's own flow method)."""

import cv2
import numpy as np

from trainer.ipol_tvl1 import Tvl1, bicubic_at, gaussian, tvl1_flow


def _texture(h=96, w=96, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.random((h, w)) * 255, (0, 0), 2.5)


def test_a_shift_of_a_textured_image_is_recovered_inside():
    a = _texture()
    b = np.roll(a, (1, 2), axis=(0, 1))  # b(x + 2, y + 1) = a(x, y)
    u, v = tvl1_flow(a, b)
    inside = (slice(12, -12), slice(12, -12))
    assert abs(np.median(u[inside]) - 2.0) < 0.1 and abs(np.median(v[inside]) - 1.0) < 0.1


def test_the_same_image_twice_has_no_flow_and_the_brightness_scale_does_not_matter():
    a = _texture()
    u, v = tvl1_flow(a, a)
    assert np.abs(u).max() < 1e-6 and np.abs(v).max() < 1e-6
    b = np.roll(a, 1, axis=1)
    u1, v1 = tvl1_flow(a, b)
    u2, v2 = tvl1_flow(a / 255.0, b / 255.0)  # both images are scaled to 0..255 together first
    assert np.allclose(u1, u2, atol=1e-6) and np.allclose(v1, v2, atol=1e-6)


def test_bicubic_sampling_is_exact_on_the_grid_and_zero_where_the_stencil_leaves_the_image():
    a = _texture(20, 20)
    y, x = np.mgrid[0:20, 0:20].astype(np.float64)
    assert np.allclose(bicubic_at(a, x, y), a)
    zeroed = bicubic_at(a, x, y, zero_outside=True)
    assert (zeroed[:, 0] == 0).all() and (zeroed[:, -2:] == 0).all() and np.allclose(zeroed[1:-2, 1:-2], a[1:-2, 1:-2])


def test_the_blur_keeps_a_constant_and_the_settings_are_the_ipol_defaults():
    assert np.allclose(gaussian(np.full((10, 10), 7.0), 0.8), 7.0)
    p = Tvl1()
    assert (p.tau, p.lam, p.theta, p.nscales, p.zfactor, p.warps, p.epsilon) == (0.25, 0.15, 0.3, 5, 0.5, 5, 0.01)
    assert p.as_json()["method"] == "ipol-tvl1"
