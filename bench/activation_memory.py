"""Saved-activation bytes per image of each architecture's training forward pass.

The executor packs several runs onto one GPU from a memory estimate per architecture
(`fairtat_core::config::gpu_memory`). Its per-image constants come from this script: the
bytes of every tensor autograd saves for the backward pass (`saved_tensors_hooks`), for a
batch of 8 images in train mode, divided by 8, in fp32. Runs on CPU; no GPU needed.
`--bf16`: the same under bfloat16 autocast with channels_last, as `train.precision = "bf16"`
(CPU autocast; CUDA's casts convolutions and matrix products to bf16 alike).

    python bench/activation_memory.py [--bf16]
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "py"))
from models import ARCHITECTURES  # noqa: E402

SHAPES = {"smallcnn": (1, 28, 28), "preact-resnet18": (3, 32, 32),
          "wrn-34-10": (3, 32, 32), "xcit-s12": (3, 32, 32)}


def saved_bytes(model, x):
    seen = {}

    def pack(t):
        # One storage saved by several nodes is held once.
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        if BF16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(x.contiguous(memory_format=torch.channels_last)).float()
        else:
            out = model(x)
        out.sum().backward()
    return sum(seen.values())


BF16 = "--bf16" in sys.argv


def main():
    torch.manual_seed(0)
    batch = 8
    for name, shape in SHAPES.items():
        model = ARCHITECTURES[name](in_channels=shape[0], num_classes=10).train()
        if BF16:
            model = model.to(memory_format=torch.channels_last)
        params = sum(p.numel() for p in model.parameters())
        x = torch.rand(batch, *shape, requires_grad=True)
        per_image = saved_bytes(model, x) / batch
        print(f"{name:16s} params {params:>11,d}  saved activations {per_image / 2**20:8.2f} MiB/image")


if __name__ == "__main__":
    main()
