"""CPU inference through ONNX Runtime, for batches whose items all have the same length.

Why: a live hit is one short item (5-20 ms of audio after the onset, plus the lead-in:
6-12 frames). torch runs it as hundreds of small operator calls (every GRU step of three
members, each a handful of ops), 4-7 ms of mostly per-call overhead on this CPU; ONNX
Runtime runs the same graph with fused GRU kernels: a 10 ms hit 1.16 ms against 3.90 ms,
features included (`python -m bench.inference [--runtime torch]`). For long items the
arithmetic dominates and the gain is smaller (1 s: 17.9 against 26.6 ms).

The graph is the loaded model's own `FullLength` forward (model.embed_full + logits),
traced once, at a DrumClassifier's first equal-length call (about 1.2 s;
`DrumClassifier.warm_up` does it before a live stream starts), with the batch size and the
frame count left variable. Its outputs equal torch's within float rounding
(tests/test_batch.py). Items of different lengths (a library's batch of mixed files) stay
on torch's masked path.
"""
from __future__ import annotations

import io
import warnings

import torch


def available() -> bool:
    try:
        import onnx  # noqa: F401  (torch's exporter writes through it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OnnxRunner:
    """feats [B, 2, n_mels, T] -> (logits [B, n_labels], embedding [B, D]) on the CPU.

    Thread-safe: ONNX Runtime sessions take concurrent runs (classify's two model threads).
    threads: ONNX Runtime's intra-op threads per run (1: the live engine gives the model
    one core, the audio and analysis threads the other).
    """

    def __init__(self, model: torch.nn.Module, n_mels: int, threads: int = 1):
        import onnxruntime as ort

        from .model import FullLength
        buf = io.BytesIO()
        example = torch.zeros(1, 2, n_mels, 8)
        # outside inference mode (the exporter traces with autograd's bookkeeping); torch's
        # exporter warns about the GRUs' batch size and its own deprecation: not for users
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(FullLength(model).eval(), (example,), buf,
                              input_names=["feats"], output_names=["logits", "embedding"],
                              dynamic_axes={"feats": {0: "batch", 3: "frames"}},
                              opset_version=17, dynamo=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(buf.getvalue(), opts,
                                            providers=["CPUExecutionProvider"])

    def __call__(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, emb = self.session.run(None, {"feats": feats.contiguous().numpy()})
        return torch.from_numpy(logits), torch.from_numpy(emb)
