"""Cross-check a fairtat checkpoint against the PyTorch reference modules.

Usage: check_checkpoint.py MODELS_DIR CHECKPOINT INPUTS [--tol 1e-4]

MODELS_DIR holds models.py (tests/py/models.py). CHECKPOINT is a .safetensors file written by
`Model::save` (its metadata names arch, in_channels, num_classes, image_size and optionally the
normalisation as JSON {"mean": [...], "std": [...]}). INPUTS is a .safetensors file with `x`
(images in [0,1]) and `logits` (what the Rust model computed in eval mode).

The checkpoint is loaded with load_state_dict(strict=True), so a missing, extra or mis-shaped
tensor fails here. Prints one JSON line and exits 0 if max |logits_torch - logits_rust| < tol.
"""
import argparse
import importlib.util
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file


def load_models_module(models_dir):
    spec = importlib.util.spec_from_file_location("reference_models", os.path.join(models_dir, "models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(models, meta):
    arch = meta["arch"]
    c, k = int(meta["in_channels"]), int(meta["num_classes"])
    if arch == "smallcnn":
        return models.SmallCNN(in_channels=c, num_classes=k, image_size=int(meta["image_size"]))
    if arch == "preact-resnet18":
        return models.PreActResNet18(in_channels=c, num_classes=k)
    if arch == "wrn-34-10":
        return models.WideResNet(depth=34, width=10, in_channels=c, num_classes=k)
    if arch == "xcit-s12":
        return models.XCiT(in_channels=c, num_classes=k)
    raise SystemExit(f"unknown arch {arch!r} in checkpoint metadata")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models_dir")
    ap.add_argument("checkpoint")
    ap.add_argument("inputs")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    with safe_open(args.checkpoint, framework="pt") as f:
        meta = f.metadata() or {}
    model = build(load_models_module(args.models_dir), meta)
    model.load_state_dict(load_file(args.checkpoint), strict=True)
    model.eval()

    inputs = load_file(args.inputs)
    x = inputs["x"].float()
    if "normalization" in meta:
        norm = json.loads(meta["normalization"])
        mean = torch.tensor(norm["mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(norm["std"], dtype=torch.float32).view(1, -1, 1, 1)
        x = (x - mean) / std
    with torch.no_grad():
        logits = model(x)
    diff = (logits - inputs["logits"].float()).abs().max().item()
    ok = diff < args.tol
    print(json.dumps({"arch": meta.get("arch"), "max_abs_diff": diff, "tol": args.tol, "ok": ok}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
