"""The encoder under ONNX Runtime: exported once from the PyTorch weights, optionally int8, cached on disk.

Why: on a small CPU, eager PyTorch spends much of a MiniLM forward pass in framework overhead and fp32
matmuls; ONNX Runtime with int8 weights reads ~2.5x
more posts per CPU-second here (bench/analyzer_speed.py). The weights are int8 in blocks of 64 (MatMulNBits)
and activations are quantised per row, which keeps the pooled features within a cosine of ~0.999 of fp32 and
makes every vector independent of batch composition (bit-identical alone or batched). The export is keyed by a
hash of the weights, so a different or fine-tuned encoder never reuses a stale file, and it is written to a
temp file and moved into place so concurrent processes never read a half-written model.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from mentalens.errors import ModelError

ONNX_VERSION = 3  # bump when the export or quantisation recipe changes
_LOCK = threading.Lock()


def weights_digest(model: Any) -> str:
    """A short hash of every parameter and buffer (names, shapes and bytes)."""
    h = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().contiguous().cpu()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def export_onnx(model: Any, target: Path, quantize: bool) -> Path:
    """Export `model` (a transformers encoder) to target (int8 per-channel when quantize), atomically."""
    import torch

    try:
        import onnx  # torch's exporter needs it
        from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    except ImportError as exc:
        msg = f"the onnx encoder runtime needs onnx and onnxruntime ({exc}): pip install onnx onnxruntime"
        raise ModelError(msg) from None

    class _Hidden(torch.nn.Module):
        def __init__(self, m: Any):
            super().__init__()
            self.m = m

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        ids = torch.tensor([[101, 1045, 2514, 102, 0], [101, 2025, 2000, 2022, 102]])
        mask = (ids != 0).long()
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # the wrapper is put in eval mode too: the exporter restores the wrapper's own mode afterwards,
            # and a fresh nn.Module is in training mode, which would switch the caller's model's dropout on
            torch.onnx.export(
                _Hidden(model).eval(), (ids, mask), str(fp32), input_names=["input_ids", "attention_mask"],
                output_names=["hidden"], opset_version=17, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "hidden": {0: "batch", 1: "tokens"}},
            )  # fmt: skip
        model.eval()
        out = fp32
        if quantize:
            # weight-only int8 in blocks of 64 with int8 compute (accuracy_level 4): activations are
            # quantised per row and block, so a sentence's vector never depends on what else is in the
            # batch (dynamic per-tensor quantisation would make results depend on batch composition)
            import logging

            out = Path(tmp) / "int8.onnx"
            cfg = DefaultWeightOnlyQuantConfig(block_size=64, is_symmetric=True, accuracy_level=4, bits=8)
            logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
            q = MatMulNBitsQuantizer(onnx.load(str(fp32)), block_size=64, is_symmetric=True, accuracy_level=4,
                                     algo_config=cfg)  # fmt: skip
            q.process()
            q.model.save_model_to_file(str(out), use_external_data_format=False)
        part = target.with_suffix(f".{os.getpid()}.part")
        os.replace(out, part)
        os.replace(part, target)
    return target


def onnx_session(model: Any, source: str, quantize: bool, threads: int | None = None) -> Any:
    """An onnxruntime InferenceSession of the encoder (exported on first use, then read from the cache)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("the onnx encoder runtime needs onnxruntime: pip install onnxruntime") from None
    import torch

    from mentalens.paths import cache_dir

    key = f"{weights_digest(model)}-{'int8' if quantize else 'fp32'}-v{ONNX_VERSION}-torch{torch.__version__}"
    path = cache_dir("analyzer", "onnx") / f"encoder-{hashlib.sha1(key.encode()).hexdigest()[:16]}.onnx"
    with _LOCK:
        if not path.is_file():
            export_onnx(model, path, quantize)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or max(1, min(torch.get_num_threads(), os.cpu_count() or 1))
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # no busy-waiting worker threads: on a shared CPU spinning burns cycles other work needs (and ~20%
    # more CPU time per post here)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a corrupt cache file: rebuild once
        path.unlink(missing_ok=True)
        with _LOCK:
            export_onnx(model, path, quantize)
        try:
            return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception:
            raise ModelError(f"cannot load the ONNX encoder {path} ({exc}): delete it and retry") from None


__all__ = ["export_onnx", "onnx_session", "weights_digest"]
