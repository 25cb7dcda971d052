"""The sentence encoder's forward pass on ONNX Runtime, for serving.

TensorFlow trains and fine-tunes the encoder (embeddings/finetune.py); answering customers
only needs its forward pass, and for one short message TensorFlow spends more time
dispatching its graph than computing it (8-9 ms a message here, twice a message in Rasa:
`make profile`). This module writes the same network, all-MiniLM-L6-v2's BERT layers with
their current weights (frozen or fine-tuned), as an ONNX graph with onnx's helper and runs
it with ONNX Runtime (onnxruntime, from PyPI, CPU only): the same mean-pooled, normalised
layers as `SentenceEncoder._pooled`, equal to TensorFlow's vectors within float rounding
(tests/embeddings/test_onnx_encoder.py).

No exporter is involved (tf2onnx pins a protobuf Rasa's cannot sit beside): the graph is
BERT's published architecture, built node by node from the TFBertModel's weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization is an ONNX operator from opset 17


class _Graph:
    """Collects nodes and weights; names are made unique by a counter."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self._n = 0

    def _name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, hint: str = "c") -> str:
        name = self._name(hint)
        self.weights.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, hint: str | None = None, **attributes: Any) -> str:
        output = self._name(hint or kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [output], **attributes))
        return output

    def dense(self, x: str, kernel: np.ndarray, bias: np.ndarray) -> str:
        return self.op("Add", self.op("MatMul", x, self.const(kernel, "kernel")), self.const(bias, "bias"))

    def layer_norm(self, x: str, gamma: np.ndarray, beta: np.ndarray, epsilon: float) -> str:
        gamma_, beta_ = self.const(gamma, "gamma"), self.const(beta, "beta")
        return self.op("LayerNormalization", x, gamma_, beta_, axis=-1, epsilon=epsilon)

    def gelu(self, x: str) -> str:
        # BERT's exact GELU: x * (1 + erf(x / sqrt(2))) / 2
        erf = self.op("Erf", self.op("Div", x, self.const(np.float32(np.sqrt(2.0)))))
        one_plus = self.op("Add", erf, self.const(np.float32(1.0)))
        return self.op("Mul", self.op("Mul", x, one_plus), self.const(np.float32(0.5)))


def build(model: Any, layers: Sequence[int]) -> bytes:
    """The ONNX model (serialised) of a TFBertModel's pooled sentence vectors for `layers`."""
    config = model.config
    # "tf_bert_model/bert/encoder/layer_._0/attention/self/query/kernel:0" -> "encoder/layer_._0/..."
    w = {
        v.name.split("/bert/", 1)[1].rsplit(":", 1)[0]: v.numpy() for v in model.weights if "/bert/" in v.name
    }
    heads, hidden, eps = config.num_attention_heads, config.hidden_size, float(config.layer_norm_eps)
    size = hidden // heads
    g = _Graph()
    ids, mask, types = "input_ids", "attention_mask", "token_type_ids"

    # Embeddings: word + position + token type, then LayerNorm.
    length = g.op("Gather", g.op("Shape", ids), g.const(np.int64(1)))
    positions = g.op("Range", g.const(np.int64(0)), length, g.const(np.int64(1)))
    x = g.op(
        "Add",
        g.op(
            "Add",
            g.op("Gather", g.const(w["embeddings/word_embeddings/weight"]), ids),
            g.op("Gather", g.const(w["embeddings/position_embeddings/embeddings"]), positions),
        ),
        g.op("Gather", g.const(w["embeddings/token_type_embeddings/embeddings"]), types),
    )
    x = g.layer_norm(x, w["embeddings/LayerNorm/gamma"], w["embeddings/LayerNorm/beta"], eps)

    # Attention mask as an additive bias over the keys, shape (batch, 1, 1, length).
    mask_f = g.op("Cast", mask, to=TensorProto.FLOAT)
    bias = g.op("Mul", g.op("Sub", g.const(np.float32(1.0)), mask_f), g.const(np.float32(-10000.0)))
    bias = g.op("Unsqueeze", bias, g.const(np.array([1, 2], dtype=np.int64)))
    split_heads = g.const(np.array([0, 0, heads, size], dtype=np.int64))
    merge_heads = g.const(np.array([0, 0, hidden], dtype=np.int64))
    scale = g.const(np.float32(1.0 / np.sqrt(size)))

    outputs = {}
    for index in range(config.num_hidden_layers):
        prefix = f"encoder/layer_._{index}/"

        def dense(x: str, name: str, prefix: str = prefix) -> str:
            return g.dense(x, w[f"{prefix}{name}/kernel"], w[f"{prefix}{name}/bias"])

        def norm(x: str, name: str, prefix: str = prefix) -> str:
            return g.layer_norm(x, w[f"{prefix}{name}/gamma"], w[f"{prefix}{name}/beta"], eps)

        def heads_of(name: str, x: str = x) -> str:
            projected = dense(x, f"attention/self/{name}")
            return g.op("Transpose", g.op("Reshape", projected, split_heads), perm=[0, 2, 1, 3])

        q, k, v = heads_of("query"), heads_of("key"), heads_of("value")
        scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])), scale)
        context = g.op("MatMul", g.op("Softmax", g.op("Add", scores, bias), axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge_heads)
        x = norm(g.op("Add", dense(context, "attention/output/dense"), x), "attention/output/LayerNorm")
        inner = g.gelu(dense(x, "intermediate/dense"))
        x = norm(g.op("Add", dense(inner, "output/dense"), x), "output/LayerNorm")
        outputs[index + 1] = x

    # Mean pooling over the real tokens (a sum: the L2 normalisation makes the count moot),
    # each layer unit-length, concatenated, scaled to unit length overall.
    mask_3d = g.op("Unsqueeze", mask_f, g.const(np.array([2], dtype=np.int64)))
    pooled = []
    for layer in layers:
        summed = g.op(
            "ReduceSum",
            g.op("Mul", outputs[layer], mask_3d),
            g.const(np.array([1], dtype=np.int64)),
            keepdims=0,
        )
        norm = g.op("Max", g.op("ReduceL2", summed, axes=[1], keepdims=1), g.const(np.float32(1e-12)))
        pooled.append(g.op("Div", summed, norm))
    joined = g.op("Concat", *pooled, axis=1) if len(pooled) > 1 else pooled[0]
    result = g.op("Div", joined, g.const(np.float32(np.sqrt(len(layers)))), hint="sentence")

    graph = helper.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "length"])
            for n in (ids, mask, types)
        ],
        [helper.make_tensor_value_info(result, TensorProto.FLOAT, ["batch", hidden * len(layers)])],
        initializer=g.weights,
    )
    built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(built)
    return built.SerializeToString()


class OnnxForward:
    """`forward(input_ids, attention_mask, token_type_ids)` -> sentence vectors, on ONNX Runtime."""

    def __init__(self, model: Any, layers: Sequence[int], threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: a message is too small to split, and the other core serves other work.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(
            build(model, layers), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> np.ndarray:
        feeds = {
            "input_ids": input_ids.astype(np.int64),
            "attention_mask": attention_mask.astype(np.int64),
            "token_type_ids": token_type_ids.astype(np.int64),
        }
        return self._session.run(None, feeds)[0]
