"""Which motion meter sees real micro-expressions: candidates screened side by side on the real clips.

    MESTREAM_ASSETS=/work/shared/assets .venv/bin/python benchmarks/spotting_meters.py --work /tmp/real \\
        [--set tune] [--fps 200 30] [--meter dis48 --meter dis128 ...] [--json out.json]

Reads the tracked real-clip videos benchmarks/spotting_real.py made (WORK/cache; run it first with the same --set,
--fps and --seed). For every analysed frame t (at most 60 a second, as the live spotter: 200 fps at 50 Hz) each
meter scores the facial regions between t - k and t (k = 0.1 s), each region weighed by its noise (90th percentile
over the still lead-in), and s(t) is the largest. The lead-in (1 s still before the onset) gives the noise: its
median and MAD, and T = median + 5 sigma. Reported per meter, pooled over clips: "seen", the share of clips whose
s peaks above T between onset and offset + k; "false", the share whose still tail (after offset + 2k) crosses T;
the median peak z-score (peak - median) / sigma; and CPU ms per frame pair.

Candidates: the live meter (DIS at 48 px) and DIS at 96 and 128 px (the whole aligned crop), Farneback at 128 px,
a phase-based meter (one Riesz band: phase change over the band's frequency is a displacement, Duque et al. WACV
2018 spot with the same idea) and the MEGC baseline's feature difference (LBP histograms, chi-squared distance
per cell). Flow and phase fields have the head's affine motion removed (edge/spotting/signal.py RegionMotion).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from edge.perception.align import region_boxes  # noqa: E402
from edge.spotting.signal import REGION_NAMES, RegionMotion  # noqa: E402


class Farneback:
    """A calc(a, b, None) like DIS's, with Farneback's pyramid (small windows: sub-pixel motion)."""

    def calc(self, a, b, _):
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.1, 0)


class RieszPhase:
    """A calc(a, b, None) giving the displacement one Riesz band's local phase change implies.

    The band is a difference of Gaussians (sigma, 2 sigma); its Riesz transform (in the Fourier domain) gives the
    local orientation and phase; the quaternionic phase change (phi cos theta, phi sin theta) divided by the
    band's centre frequency is the displacement along the orientation, trusted where the band's amplitude is
    high (weighted by A / (A + median A))."""

    def __init__(self, sigma: float = 2.0) -> None:
        self.sigma = sigma
        self._h = None
        self._omega = 1.0 / (1.5 * sigma)  # about the DoG band's peak frequency, rad / px

    def _riesz(self, img: np.ndarray):
        g1 = cv2.GaussianBlur(img, (0, 0), self.sigma)
        g2 = cv2.GaussianBlur(img, (0, 0), 2 * self.sigma)
        band = g1 - g2
        if self._h is None or self._h.shape != band.shape:
            fy = np.fft.fftfreq(band.shape[0])[:, None]
            fx = np.fft.fftfreq(band.shape[1])[None, :]
            r = np.hypot(fx, fy)
            r[0, 0] = 1.0
            self._h = (-1j * fx / r) + (fy / r)  # R1 in the real part, R2 in the imaginary part
        rz = np.fft.ifft2(np.fft.fft2(band) * self._h)
        r1, r2 = rz.real.astype(np.float32), rz.imag.astype(np.float32)
        amp = np.sqrt(band ** 2 + r1 ** 2 + r2 ** 2) + 1e-6
        rr = np.sqrt(r1 ** 2 + r2 ** 2) + 1e-9
        phase = np.arctan2(rr, band)
        return amp, phase * r1 / rr, phase * r2 / rr

    def calc(self, a, b, _):
        a_amp, a_c, a_s = self._riesz(a.astype(np.float32))
        b_amp, b_c, b_s = self._riesz(b.astype(np.float32))
        dc, ds = b_c - a_c, b_s - a_s
        w = a_amp / (a_amp + np.median(a_amp))
        return (np.stack([dc, ds], axis=-1) * (w / self._omega)[..., None]).astype(np.float32)


class LBPDifference:
    """MEGC's baseline feature difference: LBP histograms over cells, chi-squared distance, largest per region."""

    def __init__(self, cell: int = 16) -> None:
        self.cell = cell
        self.boxes = [region_boxes(128)[n] for n in REGION_NAMES]

    @staticmethod
    def _lbp(img: np.ndarray) -> np.ndarray:
        c = img[1:-1, 1:-1].astype(np.int16)
        code = np.zeros(c.shape, np.uint8)
        shifts = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0))
        for bit, (dy, dx) in enumerate(shifts):
            n = img[dy:dy + c.shape[0], dx:dx + c.shape[1]].astype(np.int16)
            code |= ((n >= c).astype(np.uint8) << bit)
        return np.pad(code, 1)

    def prepare(self, crop):
        return self._lbp(crop)

    def scores(self, a, b):
        out = []
        for x, y, w, h in self.boxes:
            best = 0.0
            for cy in range(y, max(y + 1, y + h - self.cell + 1), self.cell // 2):
                for cx in range(x, max(x + 1, x + w - self.cell + 1), self.cell // 2):
                    ha = np.bincount(a[cy:cy + self.cell, cx:cx + self.cell].ravel(), minlength=256).astype(np.float32)
                    hb = np.bincount(b[cy:cy + self.cell, cx:cx + self.cell].ravel(), minlength=256).astype(np.float32)
                    s = ha + hb
                    m = s > 0
                    best = max(best, float(((ha[m] - hb[m]) ** 2 / s[m]).sum()))
            out.append(best)
        return np.array(out, np.float32)


def make_meter(name: str):
    if name == "lbp":
        return LBPDifference()
    sizes = {"dis48": (48, 7), "dis96": (96, 13), "dis128": (128, 19), "farneback128": (128, 19), "phase128": (128, 19),
             "phase96": (96, 13)}
    size, patch = sizes[name]
    meter = RegionMotion(size, patch, recompensate_px=0.3 * size / 48)
    if name.startswith("farneback"):
        meter._dis = Farneback()
    elif name.startswith("phase"):
        meter._dis = RieszPhase(2.0 * size / 128)
    return meter


METERS = ("dis48", "dis96", "dis128", "farneback128", "phase128", "lbp")


def clip_signal(meter, crops: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(frames, s) on analysed frames, and CPU ms per pair."""
    stride = 1 if fps <= 60 else int(np.ceil(fps / 60 - 1e-9))
    rate = fps / stride
    k = max(1, int(round(0.1 * rate)))
    frames = np.arange(0, len(crops), stride)
    small = [meter.prepare(crops[i]) for i in frames]
    scores = np.full((len(frames), len(REGION_NAMES)), np.nan, np.float32)
    t0 = time.process_time()
    for j in range(k, len(frames)):
        scores[j] = meter.scores(small[j - k], small[j])
    ms = (time.process_time() - t0) * 1000.0 / max(1, len(frames) - k)
    return frames, scores, ms


def screen(meter_name: str, videos: list[dict], z: float = 5.0) -> dict:
    meter = make_meter(meter_name)
    seen = false = 0
    zs, cpu, rows = [], [], []
    for v in videos:
        frames, scores, ms = clip_signal(meter, v["crops"], v["fps"])
        cpu.append(ms)
        stride = frames[1] - frames[0] if len(frames) > 1 else 1
        k = max(1, int(round(0.1 * v["fps"] / stride)))
        onset, offset = v["truth"]
        lead = (frames < onset) & ~np.isnan(scores[:, 0])
        weights = np.percentile(scores[lead], 90, axis=0)
        weights = np.clip(weights / max(float(np.median(weights)), 1e-9), 0.5, 4.0)
        s = (scores / weights).max(axis=1)
        quiet = s[lead]
        med = float(np.median(quiet))
        sigma = 1.4826 * float(np.median(np.abs(quiet - med))) + 1e-9
        thr = med + z * sigma
        inside = (frames >= onset) & (frames <= offset + k * stride)
        tail = frames > offset + 2 * k * stride
        peak = float(np.nanmax(s[inside])) if inside.any() else 0.0
        seen += peak > thr
        false += bool(tail.any() and np.nanmax(s[tail]) > thr)
        zs.append((peak - med) / sigma)
        rows.append({"clip": v["name"], "z": round(zs[-1], 2), "seen": bool(peak > thr)})
    n = max(1, len(videos))
    return {"seen": round(seen / n, 3), "false": round(false / n, 3), "median_z": round(float(np.median(zs)), 2),
            "cpu_ms": round(float(np.mean(cpu)), 3), "clips": rows}


def main() -> int:
    from spotting_real import EVAL, TUNE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="spotting_real.py's --work (its cache)")
    parser.add_argument("--set", dest="sets", nargs="+", default=["tune"], choices=("tune", "eval"))
    parser.add_argument("--fps", nargs="+", type=float, default=[200.0, 30.0])
    parser.add_argument("--protocol", default="still", choices=("still", "drift"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--meter", action="append", default=None, choices=METERS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    print(f"{'meter':14s} {'set':4s} {'fps':>4s} {'clips':>5s} {'seen':>5s} {'false':>5s} {'med z':>6s} {'CPU ms':>7s}")
    for set_name in args.sets:
        subjects = {"tune": TUNE, "eval": EVAL}[set_name]
        for fps in args.fps:
            videos = []
            for path in sorted(glob.glob(str(args.work / "cache" / f"*_{args.protocol}_{fps:g}_{args.seed}.npz"))):
                if Path(path).name[:5] not in subjects:
                    continue
                with np.load(path) as zf:
                    if not zf["found"].all():
                        continue  # a clip whose face was lost somewhere: the live spotter restarts; not a meter's case
                    videos.append({"name": Path(path).stem, "fps": float(zf["fps"]), "crops": zf["crops"],
                                   "truth": (int(zf["truth"][0]), int(zf["truth"][1]))})
            if not videos:
                raise SystemExit(f"no tracked {set_name} clips at {fps:g} fps under {args.work / 'cache'}: "
                                 f"run benchmarks/spotting_real.py --work {args.work} --set {set_name} first")
            for name in args.meter or METERS:
                r = screen(name, videos)
                results.setdefault(name, {}).setdefault(set_name, {})[f"{fps:g}"] = r
                print(f"{name:14s} {set_name:4s} {fps:4g} {len(videos):5d} {r['seen']:5.3f} {r['false']:5.3f} "
                      f"{r['median_z']:6.1f} {r['cpu_ms']:7.2f}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
