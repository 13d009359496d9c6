"""Is a PGD attack as strong under bfloat16 autocast as in float32? On one SmallCNN checkpoint
(a fairtat `.safetensors`, Fashion-MNIST), 10-step PGD (eps 0.1, step 0.025, random start, model
in train mode as FAIR-TAT attacks) on the first 1,000 test images, untargeted, towards random
wrong classes and towards Shirt, once in fp32 and once under bf16 autocast with channels_last
(as `train.precision = "bf16"`); prints how many images the attack left correct / sent to the
target, and the share of exactly-zero input-gradient entries.

    python bench/attack_precision.py RUN/checkpoints/last.safetensors [--device cuda]
"""
import gzip, os, sys
import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "py"))
from models import SmallCNN  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    b = gzip.open(path).read()
    if b[3] == 3:
        n, h, w = np.frombuffer(b[4:16], ">i4")
        return np.frombuffer(b[16:], np.uint8).reshape(n, 1, h, w)
    return np.frombuffer(b[8:], np.uint8)


def main(checkpoint, device):
    x = torch.tensor(idx(f"{DATA}/t10k-images-idx3-ubyte.gz")[:1000] / 255.0,
                     dtype=torch.float32, device=device)
    y = torch.tensor(idx(f"{DATA}/t10k-labels-idx1-ubyte.gz")[:1000], dtype=torch.long,
                     device=device)
    model = SmallCNN().to(device)
    weights = load_file(checkpoint)
    model.load_state_dict({k: v for k, v in weights.items() if k in model.state_dict()})

    def forward(z, bf16):
        if not bf16:
            return model(z)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            return model(z.contiguous(memory_format=torch.channels_last)).float()

    def pgd(target, bf16, eps=0.1, alpha=0.025, steps=10):
        torch.manual_seed(1)
        model.train()
        d = (torch.rand_like(x) * 2 - 1) * eps
        d = torch.clamp(x + d, 0, 1) - x
        zeros = 0.0
        for _ in range(steps):
            d.requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(forward(x + d, bf16),
                                                     y if target is None else target)
            (g,) = torch.autograd.grad(loss, d)
            zeros += (g == 0).float().mean().item() / steps
            step = alpha * g.sign() * (1.0 if target is None else -1.0)
            d = torch.clamp(x + (d.detach() + step).clamp(-eps, eps), 0, 1) - x
        model.eval()
        with torch.no_grad():
            return model(x + d).argmax(1), zeros

    gen = torch.Generator().manual_seed(3)
    wrong = torch.randint(0, 10, (1000,), generator=gen).to(device)
    wrong = torch.where(wrong == y, (wrong + 1) % 10, wrong)
    cases = [("untargeted", None), ("random target", wrong),
             ("target Shirt", torch.full_like(y, 6))]
    for name, target in cases:
        for bf16 in (False, True):
            pred, zeros = pgd(target, bf16)
            hit = (pred == (y if target is None else target)).float().mean().item()
            what = "still correct" if target is None else "reached target"
            print(f"{name:14s} {'bf16' if bf16 else 'fp32'}: {what} {hit:.3f}, "
                  f"zero gradient entries {zeros:.3f}")


if __name__ == "__main__":
    device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cpu"
    main(sys.argv[1], device)
