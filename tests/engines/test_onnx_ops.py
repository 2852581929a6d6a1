import pytest

from engines.errors import MestreamError
from engines.onnx_ops import SOURCE, TRT_SUPPORTED_OPS, check_trt_ops, unsupported_ops

onnx = pytest.importorskip("onnx", reason="onnx comes with the [train] extra")
from onnx import TensorProto, helper  # noqa: E402


def _model(nodes, inputs=("x",), outputs=("y",)):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_the_allow_list_names_its_source_and_holds_the_common_layers():
    assert "onnx-tensorrt" in SOURCE
    for op in ("Conv", "Gemm", "MatMul", "Softmax", "Relu", "LayerNormalization", "MaxPool", "Concat"):
        assert op in TRT_SUPPORTED_OPS
    for op in ("Unique", "StringNormalizer", "SequenceAt", "Hardmax"):
        assert op not in TRT_SUPPORTED_OPS


def test_a_graph_of_supported_ops_passes():
    model = _model([helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Softmax", ["h"], ["y"], axis=1)])
    assert unsupported_ops(model) == []
    check_trt_ops(model)


def test_an_unsupported_op_is_named_with_its_node():
    model = _model([helper.make_node("Hardmax", ["x"], ["y"], name="head/hardmax")])
    assert unsupported_ops(model) == [("Hardmax", "head/hardmax")]
    with pytest.raises(MestreamError, match=r"Hardmax \(first at node head/hardmax\)"):
        check_trt_ops(model, what="model 'x'")


def test_custom_domain_ops_are_refused():
    model = _model([helper.make_node("FancyOp", ["x"], ["y"], domain="com.example", name="fancy")])
    assert unsupported_ops(model) == [("com.example::FancyOp", "fancy")]


def test_ops_inside_if_branches_are_checked_too():
    then_graph = helper.make_graph(
        [helper.make_node("Hardmax", ["x"], ["t"], name="inner")], "then", [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e"])], "else", [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_graph, else_branch=else_graph)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert ("Hardmax", "inner") in unsupported_ops(model)
