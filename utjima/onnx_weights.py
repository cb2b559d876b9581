"""Rewriting how an ONNX graph stores its weights (int8 or float16 on disk, float32 compute).

Torch-free on purpose: tools/convert_blazeface.py runs it in a scratch venv without torch.
"""

from __future__ import annotations


def rewrite_initializers(graph, rewrite) -> int:
    """Store weights differently: `rewrite(name, array)` returns None to keep an initializer
    as it is, or (new initializers, nodes that rebuild the original tensor by its name). The
    rebuilding nodes go first so the graph stays topologically sorted. Returns how many
    initializers were rewritten."""
    from onnx import numpy_helper

    keep, nodes, n = [], [], 0
    for t in graph.initializer:
        out = rewrite(t.name, numpy_helper.to_array(t))
        if out is None:
            keep.append(t)
            continue
        inits, rebuild = out
        keep += inits
        nodes += rebuild
        n += 1
    del graph.initializer[:]
    graph.initializer.extend(keep)
    all_nodes = nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(all_nodes)
    return n


# Largest feature maps (H*W pixels) whose convolutions become matrix products. onnxruntime
# runs a Conv as a GEMM whose N is the map's pixels: on 1, 2x2 or 4x4 maps MLAS's 16-wide
# kernels run mostly empty (pointwise), or it loops over the channels one tiny GEMM each
# (depthwise). The same sums as one MatMul/Gemm took the WASM encoder from 2.8 to 1.0 ms.
DEPTHWISE_MAX_PIXELS = 16
POINTWISE_MAX_PIXELS = 4


def _conv_attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _static_shapes(model) -> dict[str, list[int]]:
    """Every tensor's shape with the free batch axis set to 1."""
    import onnx
    from onnx import shape_inference

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in list(m.graph.input) + list(m.graph.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_value = 1
    m = shape_inference.infer_shapes(m)
    infos = list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output)
    return {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in infos}


def _depthwise_matmul(node, x_shape, y_shape, p: str):
    """Depthwise Conv (N, C, H, W) -> (N, C, Ho, Wo) as out[n, c] = x[n, c] @ M[c], M[c] the
    (H*W, Ho*Wo) matrix of the channel's taps: gathered from the unchanged weights by a
    constant index (a zero where a tap falls on the padding), folded when the session loads."""
    import numpy as np
    from onnx import helper, numpy_helper

    a = _conv_attrs(node)
    _, c, h, w = x_shape
    _, _, ho, wo = y_shape
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    top, left = a.get("pads", [0, 0, 0, 0])[:2]
    idx = np.full((h * w, ho * wo), kh * kw, np.int32)  # kh*kw: the zero column
    for oy in range(ho):
        for ox in range(wo):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - top + ky, ox * sw - left + kx
                    if 0 <= iy < h and 0 <= ix < w:
                        idx[iy * w + ix, oy * wo + ox] = ky * kw + kx
    const = {"idx": idx, "wshape": np.array([c, kh * kw], np.int64),
             "pad": np.array([0, 0, 0, 1], np.int64),  # one zero column after the taps
             "xshape": np.array([0, c, 1, h * w], np.int64),
             "bshape": np.array([c, 1, 1], np.int64), "yshape": np.array([0, c, ho, wo], np.int64)}
    inits = [numpy_helper.from_array(v, p + k) for k, v in const.items()]
    x, wt = node.input[0], node.input[1]
    nodes = [
        helper.make_node("Reshape", [wt, p + "wshape"], [p + "w"]),            # (C, kh*kw)
        helper.make_node("Pad", [p + "w", p + "pad"], [p + "wz"]),              # (C, kh*kw+1)
        helper.make_node("Gather", [p + "wz", p + "idx"], [p + "m"], axis=1),   # (C, H*W, Ho*Wo)
        helper.make_node("Reshape", [x, p + "xshape"], [p + "x"]),             # (N, C, 1, H*W)
        helper.make_node("MatMul", [p + "x", p + "m"], [p + "y"]),             # (N, C, 1, Ho*Wo)
    ]
    y = p + "y"
    if len(node.input) > 2 and node.input[2]:
        nodes += [helper.make_node("Reshape", [node.input[2], p + "bshape"], [p + "b"]),
                  helper.make_node("Add", [y, p + "b"], [p + "yb"])]  # + bias (C, 1, 1)
        y = p + "yb"
    nodes.append(helper.make_node("Reshape", [y, p + "yshape"], [node.output[0]]))  # (N, C, Ho, Wo)
    return inits, nodes


def _pointwise_matmul(node, x_shape, y_shape, p: str):
    """1x1 Conv (N, C, H, W) -> (N, Co, H, W) with the pixels as rows: (N, H*W, C) @ W.T."""
    import numpy as np
    from onnx import helper, numpy_helper

    _, c, h, w = x_shape
    co = y_shape[1]
    x, wt = node.input[0], node.input[1]
    bias = [node.input[2]] if len(node.input) > 2 and node.input[2] else []
    if h * w == 1:  # (N, C, 1, 1) -> (N, C) -> Gemm -> (N, Co) -> (N, Co, 1, 1)
        const = {"wshape": [co, c], "xshape": [-1, c], "yshape": [-1, co, 1, 1]}
        nodes = [helper.make_node("Reshape", [wt, p + "wshape"], [p + "w"]),  # (Co, C)
                 helper.make_node("Reshape", [x, p + "xshape"], [p + "x"]),
                 helper.make_node("Gemm", [p + "x", p + "w"] + bias, [p + "y"], transB=1),
                 helper.make_node("Reshape", [p + "y", p + "yshape"], [node.output[0]])]
    else:
        const = {"wshape": [co, c], "xshape": [0, c, h * w], "yshape": [0, co, h, w]}
        nodes = [helper.make_node("Reshape", [wt, p + "wshape"], [p + "w"]),        # (Co, C)
                 helper.make_node("Transpose", [p + "w"], [p + "wt"], perm=[1, 0]),  # (C, Co)
                 helper.make_node("Reshape", [x, p + "xshape"], [p + "x"]),         # (N, C, H*W)
                 helper.make_node("Transpose", [p + "x"], [p + "xt"], perm=[0, 2, 1]),
                 helper.make_node("MatMul", [p + "xt", p + "wt"], [p + "y"])]  # (N, H*W, Co)
        y = p + "y"
        if bias:
            nodes.append(helper.make_node("Add", [y, bias[0]], [p + "yb"]))
            y = p + "yb"
        nodes += [helper.make_node("Transpose", [y], [p + "yt"], perm=[0, 2, 1]),  # (N, Co, H*W)
                  helper.make_node("Reshape", [p + "yt", p + "yshape"], [node.output[0]])]
    inits = [numpy_helper.from_array(np.array(v, np.int64), p + k) for k, v in const.items()]
    return inits, nodes


def small_maps_as_matmul(model, depthwise_max: int = DEPTHWISE_MAX_PIXELS,
                         pointwise_max: int = POINTWISE_MAX_PIXELS) -> int:
    """Rewrite, in place, depthwise Convs on maps of <= depthwise_max pixels and 1x1 Convs on
    maps of <= pointwise_max pixels as MatMul/Gemm over the same weights (no weight changes;
    the outputs move by float rounding: summation order). Returns how many Convs changed."""
    shapes = _static_shapes(model)
    nodes, inits, n = [], [], 0
    for node in model.graph.node:
        a = _conv_attrs(node) if node.op_type == "Conv" else {}
        x_shape = shapes.get(node.input[0]) if a else None
        y_shape = shapes.get(node.output[0]) if a else None
        plain = (a and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
                 and a.get("dilations", [1, 1]) == [1, 1] and x_shape and y_shape
                 and len(x_shape) == 4 and all(x_shape[1:]) and all(y_shape[1:]))
        out = None
        if plain:
            pixels = x_shape[2] * x_shape[3]
            group = a.get("group", 1)
            if group == x_shape[1] == y_shape[1] and group > 1 and pixels <= depthwise_max:
                out = _depthwise_matmul(node, x_shape, y_shape, f"dw{n}_")
            elif (group == 1 and a.get("kernel_shape") == [1, 1] and pixels <= pointwise_max
                  and a.get("strides", [1, 1]) == [1, 1] and not any(a.get("pads", [0] * 4))):
                out = _pointwise_matmul(node, x_shape, y_shape, f"pw{n}_")
        if out is None:
            nodes.append(node)
            continue
        inits += out[0]
        nodes += out[1]
        n += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(inits)
    return n
