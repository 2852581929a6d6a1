#!/bin/bash
# Build, inside the Jetson builder stage, the three wheels that PyPI cannot give a Jetson on Python 3.11:
#   - tensorrt: JetPack 6 ships TensorRT 10.3 bindings for its system Python 3.10 only, so the bindings
#     are compiled for 3.11 from the TensorRT OSS release branch that matches the installed libnvinfer;
#   - opencv-contrib-python: PyPI's aarch64 wheels have no GStreamer, and CSI cameras (nvarguscamerasrc)
#     and every pipeline string go through GStreamer;
#   - pycuda: no aarch64 wheel on PyPI; built against this image's CUDA 12.6.
# Usage: build-wheels.sh OUT_DIR   (env: PYTHON, TENSORRT_BRANCH, OPENCV_VERSION, PYCUDA_VERSION)
set -euo pipefail

out="${1:?usage: build-wheels.sh OUT_DIR}"
python="${PYTHON:-python3.11}"
tensorrt_branch="${TENSORRT_BRANCH:-release/10.3}"
opencv_version="${OPENCV_VERSION:-4.11.0.86}"
pycuda_version="${PYCUDA_VERSION:-2025.1.3}"
work="$(mktemp -d)"
mkdir -p "$out"

installed_trt="$(dpkg-query -W -f='${Version}' libnvinfer10 2>/dev/null || true)"
if [[ -z "$installed_trt" ]]; then
    echo "build-wheels: libnvinfer10 is not installed; the base image must be l4t-jetpack r36 (TensorRT 10)" >&2
    exit 1
fi
# The bindings must come from the same TensorRT minor as the library they load (10.3.x <-> release/10.3).
trt_minor="$(echo "$installed_trt" | cut -d. -f1,2)"
if [[ "$tensorrt_branch" != "release/$trt_minor" ]]; then
    echo "build-wheels: TENSORRT_BRANCH=$tensorrt_branch but libnvinfer10 is $installed_trt; use release/$trt_minor" >&2
    exit 1
fi

py_minor="$("$python" -c 'import sys; print(sys.version_info.minor)')"
"$python" -m pip install --upgrade pip 'setuptools>=70.1,<81' wheel pybind11 cmake ninja numpy==1.26.4

# --- TensorRT Python bindings --------------------------------------------------------------------
git clone --depth 1 --branch "$tensorrt_branch" https://github.com/NVIDIA/TensorRT.git "$work/TensorRT"
ext="$work/external"
mkdir -p "$ext"
ln -s "$("$python" -c 'import os, pybind11; print(os.path.dirname(pybind11.__file__))')" "$ext/pybind11"
ln -s "$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" "$ext/python3.$py_minor"
# TensorRT 10's bindings include onnx-tensorrt headers (errorHelpers.hpp, ...) that live only in the
# parsers/onnx submodule; the parser header itself must be JetPack's, to match libnvonnxparser.
git -C "$work/TensorRT" submodule update --init --depth 1 parsers/onnx
ln -sf /usr/include/aarch64-linux-gnu/NvOnnxParser.h "$work/TensorRT/parsers/onnx/NvOnnxParser.h"
(
    cd "$work/TensorRT/python"
    EXT_PATH="$ext" PYTHON_MAJOR_VERSION=3 PYTHON_MINOR_VERSION="$py_minor" TARGET_ARCHITECTURE=aarch64 \
        TENSORRT_MODULE=tensorrt TRT_OSSPATH="$work/TensorRT" bash ./build.sh
)
find "$work/TensorRT/python/build" -name 'tensorrt-*.whl' -exec cp -v {} "$out/" \;

# --- OpenCV with GStreamer -----------------------------------------------------------------------
# The sdist's build honours CMAKE_ARGS; ENABLE_HEADLESS=0 keeps the same package name mediapipe asks for.
CMAKE_ARGS="-DWITH_GSTREAMER=ON -DWITH_V4L=ON" ENABLE_CONTRIB=1 ENABLE_HEADLESS=0 \
    "$python" -m pip wheel --no-deps --no-binary opencv-contrib-python \
    --wheel-dir "$out" "opencv-contrib-python==$opencv_version"

# --- pycuda ----------------------------------------------------------------------------------------
PATH="/usr/local/cuda/bin:$PATH" "$python" -m pip wheel --no-deps --wheel-dir "$out" "pycuda==$pycuda_version"

ls -l "$out"
rm -rf "$work"
