"""`mestream prep --form megc2019`: the MEGC2019 composite's flow PNGs reproduced from raw onset/apex frames."""

import csv

import cv2
import numpy as np
import pytest

from engines.errors import MestreamError
from trainer.data.megc2019 import _read_flow
from trainer.ipol_tvl1 import tvl1_flow
from trainer.megc2019_form import (
    Megc2019Params,
    as_flow,
    megc2019_image,
    optical_strain,
    scale_channel,
    shrink,
)

# a real clip in both casme2_cropped and the composite (benchmarks/results/prep_megc2019_form.md)
CLIP = ("sub24", "EP01_08")


def _texture(h=120, w=100, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((h, w)) * 255).astype(np.uint8), (0, 0), 3)


def test_strain_is_central_differences_one_sided_at_the_border():
    _, x = np.mgrid[0:6, 0:5].astype(np.float64)
    strain = optical_strain(2.0 * x, np.zeros_like(x))  # u_x = 2 everywhere: strain 2 everywhere
    assert strain.shape == (6, 5) and np.allclose(strain, 2.0)
    strain = optical_strain(x ** 2, np.zeros_like(x))
    assert np.allclose(strain[0], [1, 2, 4, 6, 7])  # (u[x+1] - u[x-1]) / 2 inside, u[1] - u[0] and u[4] - u[3] at the ends
    shear = optical_strain(np.zeros_like(x), 2.0 * x)  # v_x = 2: strain sqrt(0.5 * 2^2)
    assert np.allclose(shear, np.sqrt(2.0))


def test_the_flow_is_shrunk_by_a_triangle_filter_that_keeps_a_constant_and_a_ramp():
    assert np.allclose(shrink(np.full((224, 224), 3.0)), 3.0)
    _, x = np.mgrid[0:224, 0:224].astype(np.float64)
    small = shrink(x)  # a ramp lands on the cell centres: 8 input pixels per cell, centre 8 i + 3.5
    assert small.shape == (28, 28) and np.allclose(small[10, 5:20], 8 * np.arange(5, 20) + 3.5)


def test_each_channel_is_min_max_scaled_to_the_full_byte_range_and_truncated():
    assert scale_channel(np.array([0.0, 0.5, 1.0])).tolist() == [0, 127, 255]
    assert scale_channel(np.ones((3, 3))).max() == 0  # a flat channel: no division by zero


@pytest.mark.parametrize("flow_size", [28, 224])
def test_the_png_holds_strain_v_u_so_the_composite_loader_reads_u_v_strain(tmp_path, flow_size):
    onset = _texture()
    apex = onset.copy()
    apex[:, 50:] = np.roll(onset[:, 50:], 3, axis=1)  # the right half moves right, the left half stays
    image = megc2019_image(onset, apex, flow_size=flow_size)
    assert image.shape == (28, 28, 3) and image.dtype == np.uint8
    assert (image.reshape(-1, 3).min(0) == 0).all() and (image.reshape(-1, 3).max(0) == 255).all()
    path = tmp_path / "x .png"
    cv2.imwrite(str(path), image)
    u, v, strain = _read_flow(path)  # what training on the composite reads
    assert np.array_equal(np.stack([u, v, strain]), as_flow(image))
    assert u[4:24, 18:24].mean() > u[4:24, 3:9].mean() + 0.2  # u (the PNG's red) is the horizontal motion
    assert np.allclose(u * 255, image[:, :, 2]) and np.allclose(strain * 255, image[:, :, 0])


def test_bad_form_parameters_are_refused():
    with pytest.raises(MestreamError, match="face box 'nose' is unknown"):
        Megc2019Params(box="nose")
    with pytest.raises(MestreamError, match="flow size 10 is out of range"):
        Megc2019Params(flow_size=10)


def test_a_bad_form_is_refused_in_one_line(tmp_path, capsys):
    from edge.cli import main

    code = main(["prep", "--form", "flowy", "--clips", str(tmp_path / "c.csv"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "mestream prep: error: --form 'flowy' is unknown; expected one of: live, megc2019"
    assert not (tmp_path / "out").exists()


def _clip_row(assets):
    from trainer.data.casme2 import load_casme2
    from trainer.data.clips import clip_spec

    sheet = assets / "annotations" / "MouathAb_AnalyseMiE" / "CASME2-coding-20190701.xlsx"
    clips = load_casme2(assets / "casme2_cropped" / "CASME2_Cropped", sheet, "2019-07-01", "casme2-7class").clips
    spec = clip_spec(next(c for c in clips if (c.subject, c.name) == CLIP))
    return spec.onset, spec.apex, spec.offset, spec.frames_dir


def test_a_real_clip_reproduces_its_composite_image(assets, tmp_path, capsys):
    from edge.cli import main

    onset, apex, offset, frames_dir = _clip_row(assets)
    path = tmp_path / "clips.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "subject", "frames_dir", "onset", "apex", "offset"])
        w.writerow([f"{CLIP[0]}_{CLIP[1]}", CLIP[0], str(frames_dir.resolve()), onset, apex, offset])  # read in place
        w.writerow(["ghost", "sub99", str(tmp_path / "nowhere"), 1, 2, 3])
    out_dir = tmp_path / "out"
    code = main(["prep", "--form", "megc2019", "--clips", str(path), "--out", str(out_dir), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "skipped ghost: clip ghost: frame folder" in out and "1 prepared, 0 already cached, 1 skipped of 2" in out
    ours = _read_flow(out_dir / CLIP[0] / f"{CLIP[0]}_{CLIP[1]}.png")
    theirs = _read_flow(assets / "preprocessed" / "HTNet_MEGC2019_composite" / "STSNet_whole_norm_u_v_os" / f"{CLIP[0]}_{CLIP[1]} .png")
    r = [np.corrcoef(ours[c].ravel(), theirs[c].ravel())[0, 1] for c in range(3)]
    assert r[0] > 0.9 and r[1] > 0.9 and r[2] > 0.8, r  # measured 0.95 / 0.98 / 0.88 (u, v, strain)
    # a second run keeps what is there; other parameters into the same folder are refused
    assert main(["prep", "--form", "megc2019", "--clips", str(path), "--out", str(out_dir), "--no-progress"]) == 0
    assert "0 prepared, 1 already cached" in capsys.readouterr().out
    assert main(["prep", "--form", "megc2019", "--flow-size", "28", "--clips", str(path), "--out", str(out_dir)]) == 2
    assert "other parameters (flow_size differ)" in capsys.readouterr().err


def test_with_a_larger_flow_side_the_strain_is_taken_before_the_shrink():
    onset = _texture(224, 224)
    apex = onset.copy()
    apex[:, 112:] = np.roll(onset[:, 112:], 4, axis=1)
    u, v = tvl1_flow(onset, apex)
    assert np.array_equal(megc2019_image(onset, apex, flow_size=224)[:, :, 0], scale_channel(shrink(optical_strain(u, v))))
