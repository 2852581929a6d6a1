#!/bin/sh
# Start mestream on this device: the container ENTRYPOINT and the systemd unit's ExecStart.
#
# 1. `mestream doctor` prints what the device has into the log (and refuses to start without the CPU path).
# 2. On a GPU device, the TensorRT engine is built HERE, on first start, into the cache volume: an engine
#    is only valid for the GPU, TensorRT version and precision it was built with, so it can never be
#    baked into an image. `mestream build-engine` returns at once when the cached engine already matches.
# 3. exec `mestream run`, which then owns the process's signals (SIGTERM stops every stage within 3 s).
#    Which engine the infer process uses is the topology's choice; the engine cache is passed on to it
#    through MESTREAM_ENGINE_CACHE.
#
# Settings come from the environment (the systemd EnvironmentFile or `docker run --env-file`):
#   MESTREAM_SOURCE        required: cam:0, a file, an rtsp:// URL or a GStreamer pipeline ending in appsink
#   MESTREAM_TOPOLOGY      topology TOML (default: the one inside the package)
#   MESTREAM_BACKEND       auto (build the TensorRT engine when `doctor --require gpu` passes) | tensorrt | onnxruntime
#   MESTREAM_PRECISION     fp16 (default) | fp32 | int8 (int8 needs MESTREAM_CALIB)
#   MESTREAM_CALIB         calibration directory for int8 (`mestream export --calib-out`)
#   MESTREAM_ARTIFACT      model artifact (.onnx); default: the one inside the package
#   MESTREAM_ENGINE_CACHE  where engines and the timing cache live (default /var/cache/mestream/engines)
# Any arguments are passed on to `mestream run` (e.g. --record /var/lib/mestream/events.jsonl).
set -eu

: "${MESTREAM_SOURCE:?MESTREAM_SOURCE is not set; set it in /etc/mestream/mestream.env or with docker run -e, e.g. MESTREAM_SOURCE=cam:0}"
MESTREAM_BACKEND="${MESTREAM_BACKEND:-auto}"
MESTREAM_PRECISION="${MESTREAM_PRECISION:-fp16}"
MESTREAM_ENGINE_CACHE="${MESTREAM_ENGINE_CACHE:-/var/cache/mestream/engines}"
MESTREAM_BIN="${MESTREAM_BIN:-mestream}"
MESTREAM_PYTHON="${MESTREAM_PYTHON:-python}"
export MESTREAM_ENGINE_CACHE

log() {
    echo "mestream-start: $*" >&2
}

case "$MESTREAM_BACKEND" in
    auto | tensorrt | onnxruntime) ;;
    *)
        log "MESTREAM_BACKEND=$MESTREAM_BACKEND: expected auto, tensorrt or onnxruntime"
        exit 2
        ;;
esac
case "$MESTREAM_PRECISION" in
    fp16) precision_args="--fp16" ;;
    fp32) precision_args="" ;;
    int8)
        : "${MESTREAM_CALIB:?MESTREAM_PRECISION=int8 needs MESTREAM_CALIB=DIR (calibration data)}"
        precision_args="--int8 --calib $MESTREAM_CALIB"
        ;;
    *)
        log "MESTREAM_PRECISION=$MESTREAM_PRECISION: expected fp16, fp32 or int8"
        exit 2
        ;;
esac

# The report goes to the journal / docker logs; a device that cannot even run the CPU path stops here.
"$MESTREAM_BIN" doctor --require cpu

backend="$MESTREAM_BACKEND"
if [ "$backend" = auto ]; then
    if "$MESTREAM_BIN" -q doctor --require gpu >/dev/null 2>&1; then
        backend=tensorrt
    else
        backend=onnxruntime
        log "GPU path incomplete (see the doctor report above): no TensorRT engine built, ONNX Runtime only"
    fi
fi

run_args=""
if [ -n "${MESTREAM_TOPOLOGY:-}" ]; then
    run_args="--topology $MESTREAM_TOPOLOGY"
fi
if [ -n "${MESTREAM_ARTIFACT:-}" ]; then
    run_args="$run_args --artifact $MESTREAM_ARTIFACT"
fi

if [ "$backend" = tensorrt ]; then
    artifact="${MESTREAM_ARTIFACT:-}"
    if [ -z "$artifact" ]; then
        if ! artifact="$("$MESTREAM_PYTHON" -c 'import engines; print(engines.default_artifact_path())' 2>/dev/null)"; then
            log "no model artifact inside the package: set MESTREAM_ARTIFACT=/path/to/model.onnx"
            exit 2
        fi
    fi
    mkdir -p "$MESTREAM_ENGINE_CACHE"
    log "building the TensorRT engine of $artifact into $MESTREAM_ENGINE_CACHE unless cached (first start: minutes)"
    # Word splitting of precision_args is intended: it holds whole options, no spaces inside values.
    # shellcheck disable=SC2086
    "$MESTREAM_BIN" build-engine --artifact "$artifact" $precision_args --out-dir "$MESTREAM_ENGINE_CACHE"
fi

# Paths in MESTREAM_TOPOLOGY / MESTREAM_ARTIFACT must not contain spaces (split here on purpose).
# shellcheck disable=SC2086
exec "$MESTREAM_BIN" run $run_args --source "$MESTREAM_SOURCE" "$@"
