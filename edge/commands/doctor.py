"""`mestream doctor`: what this machine can run, and what to install for what it cannot.

Looks at the CPU, a Jetson's L4T release, the NVIDIA GPU and CUDA driver, TensorRT, pycuda, ONNX Runtime's
execution providers, OpenCV's video back-ends, the cameras under /dev/video*, the MediaPipe face models inside
the installed package and ZeroMQ's CURVE support. Every probe is a plain function that returns a `Check`;
none of them raises, so one missing piece never hides the others. Heavy libraries are imported inside the
probe that needs them, never at module top (`mestream --help` must stay light).

    mestream doctor                  # a table for people
    mestream doctor --json           # the same for machines
    mestream doctor --require gpu    # exit non-zero, with the fix, when the GPU pipeline cannot run here
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engines.errors import MestreamError

HELP = "print what this machine can run (CPU/GPU, CUDA, TensorRT, pycuda, cameras, MediaPipe models) and what to install"

# What a user can ask for with --require, and the checks each one needs (by Check.name).
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "cpu": ("onnxruntime", "opencv", "mediapipe models"),
    "gpu": ("onnxruntime", "opencv", "mediapipe models", "gpu", "cuda driver", "tensorrt", "pycuda"),
    "camera": ("cameras",),
    "gstreamer": ("opencv gstreamer",),
    "curve": ("zmq curve",),
}
CAPABILITY_TITLES = {
    "cpu": "CPU pipeline (ONNX Runtime)",
    "gpu": "GPU pipeline (CUDA flow + TensorRT)",
    "camera": "live camera (/dev/video*)",
    "gstreamer": "GStreamer sources (CSI, pipelines)",
    "curve": "CURVE-encrypted result stream",
}

# The face models the tracker loads from inside the mediapipe wheel. Releases after 0.10.21 stopped
# bundling them (they download at run time, which an offline device cannot do), hence the pin.
MEDIAPIPE_MODELS = (
    "modules/face_detection/face_detection_short_range.tflite",
    "modules/face_landmark/face_landmark.tflite",
)

# L4T major release -> JetPack major, for the line a person reads (anchors-edge.md section 4.1).
L4T_TO_JETPACK = {"32": "4", "35": "5", "36": "6", "38": "7"}

PROBE_TIMEOUT_S = 5.0  # nvidia-smi / nvpmodel can hang on a wedged driver; never let doctor hang with them


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str  # what was found, one line
    fix: str = ""  # what to install or do when not ok, one line
    info: bool = False  # informational only: never counts as missing


@dataclass(frozen=True)
class Machine:
    """Where the probes look; tests point these at a temporary directory."""

    dev_dir: Path = Path("/dev")
    v4l_sysfs: Path = Path("/sys/class/video4linux")
    tegra_release: Path = Path("/etc/nv_tegra_release")
    device_tree_model: Path = Path("/proc/device-tree/model")
    cpuinfo: Path = Path("/proc/cpuinfo")
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def _run(cmd: list[str]) -> str | None:
    """stdout of a short command, or None if it is missing, fails or hangs."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def _distribution_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # a source checkout on sys.path has no metadata; what loads is what matters
        return "(no package metadata)"


def check_cpu(machine: Machine) -> Check:
    text = _read(machine.cpuinfo) or ""
    names = re.findall(r"^model name\s*:\s*(.+)$", text, flags=re.M)
    # ARM kernels (Jetson) have no "model name"; their "CPU part" says little, so fall back to the arch.
    name = names[0].strip() if names else platform.processor() or platform.machine()
    cores = os.cpu_count() or 0
    return Check("cpu", True, f"{name}, {cores} logical cores, {platform.machine()}, Linux {platform.release()}", info=True)


def parse_l4t_release(text: str) -> str | None:
    """'# R36 (release), REVISION: 4.3, ...' -> '36.4.3'."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def check_jetson(machine: Machine) -> Check:
    text = _read(machine.tegra_release)
    if text is None:
        return Check("jetson", True, f"not a Jetson (no {machine.tegra_release})", info=True)
    release = parse_l4t_release(text)
    if release is None:
        return Check("jetson", True, f"Jetson with an unreadable {machine.tegra_release}: {text[:60]!r}", info=True)
    major = release.split(".")[0]
    jetpack = L4T_TO_JETPACK.get(major, "?")
    model = _read(machine.device_tree_model) or "unknown model"
    power = _run(["nvpmodel", "-q"])
    power_line = f"; power mode {power.splitlines()[0]}" if power else ""
    # Containers must carry the host's L4T major: an r36 image on an r35 host cannot load its CUDA libraries.
    return Check(
        "jetson",
        True,
        f"{model}, L4T R{release} (JetPack {jetpack}); containers must use an L4T r{major} base{power_line}",
        info=True,
    )


def check_gpu(machine: Machine) -> Check:
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if out:
        return Check("gpu", True, "; ".join(line.strip() for line in out.splitlines()))
    if machine.tegra_release.exists():
        # Jetson GPUs are integrated: nvidia-smi is absent or partial, the CUDA driver check says the rest.
        return Check("gpu", True, f"integrated Jetson GPU ({_read(machine.device_tree_model) or 'Tegra'})")
    return Check(
        "gpu",
        False,
        "no NVIDIA GPU found (nvidia-smi missing or failing)",
        "install the NVIDIA driver so nvidia-smi works (in a container: docker run --gpus all); "
        "the CPU pipeline runs without a GPU",
    )


def check_cuda_driver(machine: Machine) -> Check:
    fix = (
        "install the NVIDIA driver that provides libcuda.so.1 (in a container: --gpus all, or --runtime nvidia "
        "on Jetson)"
    )
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return Check("cuda driver", False, "libcuda.so.1 not found", fix)
    version = ctypes.c_int(0)
    count = ctypes.c_int(0)
    status = lib.cuInit(0)
    if status != 0:
        return Check("cuda driver", False, f"libcuda.so.1 found but cuInit failed with CUDA error {status}", fix)
    lib.cuDriverGetVersion(ctypes.byref(version))
    lib.cuDeviceGetCount(ctypes.byref(count))
    major, minor = divmod(version.value, 1000)
    visible = machine.env.get("CUDA_VISIBLE_DEVICES")
    note = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
    if count.value == 0:
        return Check("cuda driver", False, f"CUDA driver {major}.{minor // 10} sees no device{note}", fix)
    return Check("cuda driver", True, f"CUDA driver API {major}.{minor // 10}, {count.value} device(s){note}")


def _is_jetson(machine: Machine) -> bool:
    return machine.tegra_release.exists()


def check_tensorrt(machine: Machine) -> Check:
    if _is_jetson(machine):
        fix = (
            "TensorRT 10 comes with JetPack 6 (apt install nvidia-tensorrt); its Python bindings are for the "
            "system Python 3.10, so use deploy/Dockerfile.jetson, which builds them for this Python"
        )
    else:
        fix = "pip install 'mestream[gpu]' (TensorRT 10 wheels from PyPI; needs the NVIDIA driver)"
    if importlib.util.find_spec("tensorrt") is None:
        return Check("tensorrt", False, "python module tensorrt not installed", fix)
    try:
        import tensorrt  # heavy: loads libnvinfer
    except (ImportError, OSError) as exc:
        return Check("tensorrt", False, f"tensorrt is installed but does not load: {exc}", fix)
    version = str(getattr(tensorrt, "__version__", "unknown"))
    if not version.startswith("10."):
        return Check("tensorrt", False, f"TensorRT {version}; mestream uses the TensorRT 10 API", fix)
    return Check("tensorrt", True, f"TensorRT {version}")


def check_pycuda(machine: Machine) -> Check:
    fix = "pip install 'mestream[gpu]' (pycuda builds from source: needs the CUDA toolkit with nvcc on PATH)"
    if importlib.util.find_spec("pycuda") is None:
        return Check("pycuda", False, "python module pycuda not installed", fix)
    try:
        import pycuda.driver as cuda
    except (ImportError, OSError) as exc:
        return Check("pycuda", False, f"pycuda is installed but does not load: {exc}", fix)
    version = _distribution_version("pycuda")
    try:
        cuda.init()
        count = cuda.Device.count()
    except cuda.Error as exc:
        return Check("pycuda", False, f"pycuda {version} cannot initialise CUDA: {exc}", fix)
    names = ", ".join(cuda.Device(i).name() for i in range(count))
    return Check("pycuda", count > 0, f"pycuda {version}, {count} device(s): {names}", fix if count == 0 else "")


def check_onnxruntime(machine: Machine) -> Check:
    fix = "pip install onnxruntime (it comes with mestream; pip install -e . restores it)"
    if importlib.util.find_spec("onnxruntime") is None:
        return Check("onnxruntime", False, "python module onnxruntime not installed", fix)
    try:
        import onnxruntime
    except ImportError as exc:
        return Check("onnxruntime", False, f"onnxruntime does not load: {exc}", fix)
    providers = onnxruntime.get_available_providers()
    detail = f"onnxruntime {onnxruntime.__version__}, providers: {', '.join(providers)}"
    if "CPUExecutionProvider" not in providers:
        return Check("onnxruntime", False, detail, fix)
    return Check("onnxruntime", True, detail)


def _opencv_build_flag(info: str, name: str) -> bool:
    match = re.search(rf"^\s*{name}:\s*(\S+)", info, flags=re.M)
    return bool(match) and match.group(1).upper() != "NO"


def check_opencv(machine: Machine) -> list[Check]:
    fix = "pip install 'opencv-contrib-python>=4.11,<4.12' (it comes with mestream)"
    if importlib.util.find_spec("cv2") is None:
        missing = Check("opencv", False, "python module cv2 not installed", fix)
        return [missing, Check("opencv gstreamer", False, "OpenCV not installed", fix)]
    try:
        import cv2
    except ImportError as exc:
        missing = Check("opencv", False, f"cv2 does not load: {exc}", fix)
        return [missing, Check("opencv gstreamer", False, "OpenCV does not load", fix)]
    info = cv2.getBuildInformation()
    backends = [name for name in ("FFMPEG", "GStreamer", "v4l/v4l2") if _opencv_build_flag(info, name)]
    opencv = Check("opencv", True, f"OpenCV {cv2.__version__}, video back-ends: {', '.join(backends) or 'none'}")
    if "GStreamer" in backends:
        gst = Check("opencv gstreamer", True, "OpenCV was built with GStreamer: CSI and pipeline-string sources open")
    else:
        gst = Check(
            "opencv gstreamer",
            False,
            "OpenCV was built without GStreamer (PyPI wheels are): CSI cameras and pipeline strings will not open",
            "build opencv-contrib-python with CMAKE_ARGS=-DWITH_GSTREAMER=ON (deploy/Dockerfile.jetson does); "
            "webcams, files and rtsp:// URLs work without it",
        )
    return [opencv, gst]


def check_cameras(machine: Machine) -> Check:
    nodes = sorted(machine.dev_dir.glob("video*"), key=lambda p: (len(p.name), p.name))
    if not nodes:
        return Check(
            "cameras",
            False,
            f"no camera under {machine.dev_dir}/video*",
            "plug in a USB camera or connect the CSI ribbon (in a container add --device /dev/video0); "
            "a video file or rtsp:// URL works as a source without one",
        )
    found = []
    for node in nodes:
        # One UVC camera usually shows as two nodes (capture + metadata); the sysfs name tells which is which.
        name = _read(machine.v4l_sysfs / node.name / "name")
        found.append(f"{node} ({name})" if name else str(node))
    return Check("cameras", True, ", ".join(found))


def check_mediapipe_models(machine: Machine) -> Check:
    fix = "pip install mediapipe==0.10.21 (later releases no longer bundle the face models; 0.10.18 on aarch64)"
    spec = importlib.util.find_spec("mediapipe")  # the spec only: importing mediapipe costs seconds
    if spec is None or not spec.submodule_search_locations:
        return Check("mediapipe models", False, "python module mediapipe not installed", fix)
    root = Path(next(iter(spec.submodule_search_locations)))
    missing = [rel for rel in MEDIAPIPE_MODELS if not (root / rel).is_file()]
    mp_version = _distribution_version("mediapipe")
    if missing:
        return Check("mediapipe models", False, f"mediapipe {mp_version} lacks {', '.join(missing)}", fix)
    names = ", ".join(Path(rel).name for rel in MEDIAPIPE_MODELS)
    return Check("mediapipe models", True, f"mediapipe {mp_version} bundles {names}")


def check_zmq_curve(machine: Machine) -> Check:
    fix = "pip install --force-reinstall pyzmq (PyPI wheels bundle libzmq with libsodium, which CURVE needs)"
    if importlib.util.find_spec("zmq") is None:
        return Check("zmq curve", False, "python module zmq (pyzmq) not installed", fix)
    import zmq

    if not zmq.has("curve"):
        return Check("zmq curve", False, f"libzmq {zmq.zmq_version()} was built without CURVE", fix)
    return Check("zmq curve", True, f"pyzmq {zmq.pyzmq_version()}, libzmq {zmq.zmq_version()} with CURVE")


def run_checks(machine: Machine) -> list[Check]:
    checks = [check_cpu(machine), check_jetson(machine), check_gpu(machine), check_cuda_driver(machine)]
    checks += [check_tensorrt(machine), check_pycuda(machine), check_onnxruntime(machine)]
    checks += check_opencv(machine)
    checks += [check_cameras(machine), check_mediapipe_models(machine), check_zmq_curve(machine)]
    return checks


def capabilities(checks: list[Check]) -> dict[str, list[str]]:
    """capability -> names of the checks it still misses (empty: this machine can do it)."""
    failed = {c.name for c in checks if not c.ok and not c.info}
    return {cap: [name for name in needs if name in failed] for cap, needs in CAPABILITIES.items()}


def format_report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = ["mestream doctor: what this machine has"]
    for c in checks:
        mark = "info" if c.info else ("ok" if c.ok else "MISSING")
        lines.append(f"  {mark:<8}{c.name:<{width}}  {c.detail}")
        if c.fix and not c.ok:
            lines.append(f"  {'':<8}{'':<{width}}  fix: {c.fix}")
    lines.append("what it can run:")
    for cap, missing in capabilities(checks).items():
        verdict = "yes" if not missing else f"no (missing: {', '.join(missing)})"
        lines.append(f"  {CAPABILITY_TITLES[cap]:<38}{verdict}")
    return "\n".join(lines)


def require(checks: list[Check], wanted: list[str]) -> None:
    """Raise one line naming what is missing for each wanted capability, with the fixes."""
    by_name = {c.name: c for c in checks}
    gaps = capabilities(checks)
    problems = []
    for cap in wanted:
        for name in gaps[cap]:
            problems.append(f"{name} ({by_name[name].detail}; fix: {by_name[name].fix})")
    if problems:
        raise MestreamError(f"this machine cannot run --require {','.join(wanted)}: missing " + "; ".join(problems))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON instead of a table")
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        choices=sorted(CAPABILITIES),
        help="fail (exit 2, with what to install) unless this machine can run it; repeatable",
    )


def run(args: argparse.Namespace) -> int:
    checks = run_checks(Machine())
    if args.json:
        doc = {"checks": [asdict(c) for c in checks], "missing": capabilities(checks)}
        print(json.dumps(doc, indent=2))
    else:
        print(format_report(checks))
    require(checks, args.require)
    return 0
