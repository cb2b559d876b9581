"""utjima/onnx_weights.py: int8 storage keeps the graph's answers; convs on small maps become
matrix products that compute the same sums (float rounding apart) from the same weights."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from utjima.onnx_weights import small_maps_as_matmul


def _conv(name, x, c_in, c_out, k, *, group=1, stride=1, pad=0, bias=True, rng):
    w = rng.standard_normal((c_out, c_in // group, k, k)).astype(np.float32)
    inits = [numpy_helper.from_array(w, name + ".w")]
    inputs = [x, name + ".w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(c_out).astype(np.float32),
                                             name + ".b"))
        inputs.append(name + ".b")
    node = helper.make_node("Conv", inputs, [name], kernel_shape=[k, k], group=group,
                            strides=[stride, stride], pads=[pad] * 4)
    return node, inits


def _graph(size: int):
    """crop (N, 8, size, size) -> depthwise 5x5 -> depthwise 3x3 stride 2 -> pointwise ->
    global pool -> pointwise without bias on (N, C, 1, 1): each kind of conv the rewrite meets
    in MobileNetV3's last blocks."""
    rng = np.random.default_rng(0)
    specs = [("dw5", 8, 8, 5, dict(group=8, pad=2)),
             ("dw3s2", 8, 8, 3, dict(group=8, stride=2, pad=1)),
             ("pw", 8, 12, 1, {})]
    nodes, inits, x = [], [], "x"
    for name, ci, co, k, kw in specs:
        node, w = _conv(name, x, ci, co, k, rng=rng, **kw)
        nodes.append(node)
        inits += w
        x = name
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    node, w = _conv("fc", "gap", 12, 6, 1, bias=False, rng=rng)
    nodes.append(node)
    inits += w
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, size, size])],
        [helper.make_tensor_value_info("fc", TensorProto.FLOAT, ["n", 6, 1, 1]),
         helper.make_tensor_value_info("pw", TensorProto.FLOAT, ["n", 12, None, None])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts).run(None, {"x": x})


@pytest.mark.parametrize("size, rewritten", [(4, 4), (2, 4), (8, 1)])
def test_small_maps_as_matmul_same_sums(size, rewritten):
    """4x4 and 2x2 inputs: all four convs change (the pointwise one sees the stride-2 conv's
    2x2 or 1x1 map); 8x8: only the fc on 1x1 does (depthwise on 64 pixels > 16, pointwise on
    4x4 = 16 pixels > 4 stay Convs). Either way the outputs are the Conv graph's."""
    model = _graph(size)
    x = np.random.default_rng(1).random((3, 8, size, size), dtype=np.float32)
    want = _run(model, x)
    n = small_maps_as_matmul(model)
    onnx.checker.check_model(model)
    ops = [node.op_type for node in model.graph.node]
    assert n == rewritten and ops.count("Conv") == 4 - rewritten
    for got, ref in zip(_run(model, x), want, strict=True):
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # the weights are the same tensors: nothing was re-quantized or folded into new values
    floats = {t.name for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
    assert {"dw5.w", "dw3s2.w", "pw.w", "fc.w"} <= floats
