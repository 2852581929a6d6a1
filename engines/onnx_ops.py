"""Which ONNX operators TensorRT's ONNX parser accepts, and a check of a graph against that list.

Source of the allow-list: onnx/onnx-tensorrt `docs/operators.md` at commit 6d0ab7be324d02c7feb3a306b6fdbeae84f71ddc
(the TensorRT 8.5 support matrix, "supports operators up to Opset 17"): every operator marked "Y" there.
TensorRT 10 keeps all of them (its parser covers opsets 9 to 20) and adds more; of the additions only
LayerNormalization is listed here (native import since TensorRT 8.6), because our opset-17 transformers
export it. Anything not listed is refused at export time, so a model that would fail `build-engine` on a
Jetson fails on the trainer's machine first. Per-operator restrictions (e.g. Conv weights must be
initializers, Resize modes) are left to the parser itself; `mestream build-engine` lists its errors.
"""

from __future__ import annotations

from engines.errors import MestreamError

SOURCE = "onnx/onnx-tensorrt docs/operators.md @ 6d0ab7be324d02c7feb3a306b6fdbeae84f71ddc (TensorRT 8.5, opset <= 17) + LayerNormalization (TensorRT >= 8.6)"

TRT_SUPPORTED_OPS: frozenset[str] = frozenset(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil
    Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
    DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
    GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
    GridSample GRU HardSwish HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu
    Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean
    MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
    ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
    RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
    ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN
    RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin
    Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh
    ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
    LayerNormalization
    """.split()
)

_DEFAULT_DOMAINS = ("", "ai.onnx")


def _walk(graph):
    """Every node of a graph, including those inside If/Loop/Scan bodies."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _walk(attr.g)
            for sub in attr.graphs:
                yield from _walk(sub)


def unsupported_ops(model) -> list[tuple[str, str]]:
    """(op_type, node name) for every node TensorRT's ONNX parser would refuse; [] when all are supported."""
    bad = []
    for node in _walk(model.graph):
        op = node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}::{node.op_type}"
        if node.domain not in _DEFAULT_DOMAINS or node.op_type not in TRT_SUPPORTED_OPS:
            bad.append((op, node.name or "(unnamed)"))
    return bad


def check_trt_ops(model, what: str = "model") -> None:
    """Raise a one-line MestreamError naming the unsupported operators, if any."""
    bad = unsupported_ops(model)
    if bad:
        ops = sorted({op for op, _ in bad})
        first = bad[0][1]
        raise MestreamError(
            f"{what} uses operators TensorRT's ONNX parser does not support: {', '.join(ops)} "
            f"(first at node {first}); replace them in the model's forward() (allow-list: {SOURCE})"
        )
