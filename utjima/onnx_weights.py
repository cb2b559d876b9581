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
