"""Self-test of methods_ref.py (the PyTorch transcriptions of DAFA, TRIX and FAAL reference code).

References: rucy74/DAFA c60ba83 (losses.py trades_loss, madry_loss; utils.py
calculate_class_weights), Fairness-a11y/TRIX cdeb435 (losses.py mixed_trades_loss,
calculate_class_weights_from_clean), TrustAI/FAAL b20ee9d (ft_prn.py cw / per-class margin /
`--loss AT` loss, FAAL.py DAW's KL-DRO).

Usage: methods_ref_selftest.py [MODELS_DIR]   (default: this script's folder)

Builds a random SmallCNN checkpoint with fairtat's checkpoint metadata (format, arch, dataset,
in_channels, num_classes, image_size, normalization, class_names, epoch, run_id, kind), random
inputs, runs every case of methods_ref.py as a subprocess (the CLI the Rust tests use) and checks
shapes and properties. Small and CPU-only. Exits 0 when every check passes.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "methods_ref.py")
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def run(case, models_dir, ckpt, inputs, tmp):
    ip, op = os.path.join(tmp, f"{case}_in.safetensors"), os.path.join(tmp, f"{case}_out.safetensors")
    save_file({k: v.contiguous() for k, v in inputs.items()}, ip)
    r = subprocess.run([sys.executable, SCRIPT, case, models_dir, ckpt, ip, op], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"methods_ref.py {case} failed")
    return load_file(op)


def kl_div_sum(p):
    K = len(p)
    return float(np.sum((1 / K) * np.log((1 / K) / p) - 1 / K + p))  # cvxpy's kl_div summed


def closed_form(a, r):
    # only here, as a second check: p_c = mu / (nu - a_c), nu > max a, bisection on nu
    K = len(a)
    lo, hi = a.max() + 1e-300, a.max() + 1.0
    def f(nu):
        q = 1 / (nu - a)
        return kl_div_sum(q / q.sum())
    while f(hi) > r:
        hi = a.max() + 2 * (hi - a.max())
    for _ in range(3000):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if f(mid) > r else (lo, mid)
    q = 1 / (hi - a)
    return q / q.sum()


def random_feasible(rng, K, r, n):
    out = []
    u = np.ones(K) / K
    for i in range(n):
        q = rng.dirichlet(np.full(K, 0.3 if i % 2 else 2.0))
        q = np.maximum(q, 1e-300)
        lo, hi = 0.0, 1.0  # largest theta with KL(u || u + theta (q - u)) <= r, times a random fraction
        if kl_div_sum(q) > r:
            for _ in range(100):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if kl_div_sum(u + mid * (q - u)) <= r else (lo, mid)
        else:
            lo = 1.0
        theta = lo * (1.0 if i % 3 == 0 else rng.uniform())
        out.append(u + theta * (q - u))
    return out


def main():
    models_dir = sys.argv[1] if len(sys.argv) > 1 else HERE
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    B, C, S, K = 12, 1, 16, 10
    eps, step, steps, beta = 0.3, 0.1, 3, 6.0
    sys.path.insert(0, models_dir)
    import models  # noqa: E402

    with tempfile.TemporaryDirectory() as tmp:
        net = models.SmallCNN(in_channels=C, num_classes=K, image_size=S)
        meta = {"format": "fairtat-checkpoint-v1", "arch": "smallcnn", "dataset": "mnist",
                "in_channels": str(C), "num_classes": str(K), "image_size": str(S),
                "normalization": json.dumps({"mean": [0.1307], "std": [0.3081]}),
                "class_names": json.dumps([str(i) for i in range(K)]), "epoch": "0",
                "run_id": "selftest", "kind": "last"}
        ckpt = os.path.join(tmp, "model.safetensors")
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, ckpt, metadata=meta)
        net.eval()
        mean, std = 0.1307, 0.3081
        fwd = lambda z: net((z - mean) / std)  # noqa: E731

        x = torch.rand(B, C, S, S)
        y = torch.arange(B) % K
        start = x + 0.001 * torch.randn_like(x)
        class_weights = torch.from_numpy(rng.uniform(0.5, 1.5, K))
        bound = (class_weights.float()[y] * eps).view(-1, 1, 1, 1) + 1e-6

        # 1. dafa_weights
        N = 200
        labels = torch.from_numpy(rng.integers(0, K, N))
        probs = torch.softmax(torch.randn(N, K, dtype=torch.float64) * 2, 1)
        o = run("dafa_weights", models_dir, "-", {"probs": probs, "labels": labels,
                                                  "params": torch.tensor([1.0], dtype=torch.float64)}, tmp)
        w = o["weights"]
        sim = np.stack([probs.numpy()[labels.numpy() == i].mean(0) for i in range(K)])
        d = np.diag(sim)
        want = np.ones(K)
        for i in range(K):
            for j in range(K):
                if i != j:
                    want[i] += sim[i, j] * d[j] if d[i] < d[j] else -sim[j, i] * d[i]
        check(w.dtype == torch.float64 and w.shape == (K,), "dafa_weights: weights [K] f64")
        check(np.allclose(w.numpy(), want, atol=1e-12), "dafa_weights: equals an independent numpy evaluation")

        # 2. dafa_trades
        base = {"x": x, "y": y, "start": start, "class_weights": class_weights}
        o = run("dafa_trades", models_dir, ckpt,
                dict(base, params=torch.tensor([eps, step, steps, beta], dtype=torch.float64)), tmp)
        check(o["x_adv"].shape == x.shape and o["loss"].shape == () and o["probs"].shape == (B, K),
              "dafa_trades: shapes")
        check(bool(((o["x_adv"] - x).abs() <= bound).all()), "dafa_trades: |x_adv - x| <= w[y] eps")
        check(bool((o["x_adv"] - start).abs().max() > 1e-3), "dafa_trades: the attack moved")
        with torch.no_grad():  # no dropout masks given: train-mode SmallCNN == eval-mode SmallCNN
            la, ln = fwd(o["x_adv"]), fwd(x)
            cwm = class_weights.float()[y]
            want = (F.cross_entropy(ln, y, reduction="none") * cwm).mean() + beta * F.kl_div(
                F.log_softmax(la, 1), F.softmax(ln, 1), reduction="sum") / B
        check(abs(float(o["loss"]) - float(want)) < 1e-5, "dafa_trades: loss recomputed from x_adv")
        check(torch.allclose(o["probs"], F.softmax(la, 1), atol=1e-6), "dafa_trades: probs = softmax(adv)")
        masks = (torch.rand(2, B, 200) < 0.5).float()
        om = run("dafa_trades", models_dir, ckpt,
                 dict(base, params=torch.tensor([eps, step, steps, beta], dtype=torch.float64),
                      dropout_masks=masks), tmp)
        check(torch.equal(om["x_adv"], o["x_adv"]) and abs(float(om["loss"]) - float(o["loss"])) > 1e-6,
              "dafa_trades: dropout_masks change the train-mode loss only")

        # 3. dafa_pgd_at
        o = run("dafa_pgd_at", models_dir, ckpt,
                dict(base, params=torch.tensor([eps, step, steps], dtype=torch.float64)), tmp)
        check(all(o[k].shape == x.shape for k in ("x_adv", "x_adv_reference"))
              and o["loss"].shape == () and o["loss_reference"].shape == (), "dafa_pgd_at: shapes")
        check(bool(((o["x_adv"] - x).abs() <= bound).all()), "dafa_pgd_at: |x_adv - x| <= w[y] eps")
        check(bool(((o["x_adv_reference"] - x).abs() <= eps + 1e-6).all()),
              "dafa_pgd_at: |x_adv_reference - x| <= eps (uniform ball)")
        check(bool((o["x_adv"] - o["x_adv_reference"]).abs().max() > 1e-3),
              "dafa_pgd_at: corrected x_adv differs from x_adv_reference")
        with torch.no_grad():
            for k, lk in (("x_adv", "loss"), ("x_adv_reference", "loss_reference")):
                want = (F.cross_entropy(fwd(o[k]), y, reduction="none") * class_weights.float()[y]).mean()
                check(abs(float(o[lk]) - float(want)) < 1e-5, f"dafa_pgd_at: {lk} recomputed from {k}")

        # 4. trix
        rand_targets = (y + torch.from_numpy(rng.integers(1, K, B))) % K
        o = run("trix", models_dir, ckpt,
                dict(base, rand_targets=rand_targets,
                     params=torch.tensor([eps, step, steps, beta], dtype=torch.float64)), tmp)
        check(o["x_adv"].shape == x.shape and o["loss"].shape == () and o["tar_weights"].shape == (K,)
              and o["tar_weights"].dtype == torch.float64 and o["targeted"].shape == (B,), "trix: shapes")
        check(bool(((o["x_adv"] - x).abs() <= bound).all()), "trix: |x_adv - x| <= w[y] eps")
        with torch.no_grad():
            ln = fwd(x)
            pn = F.softmax(ln, 1).double().numpy()
            sim = np.stack([pn[y.numpy() == i].mean(0) for i in range(K)]) + 1e-8 * np.eye(K)
            d = np.diag(sim)
            tw = np.ones(K)
            for i in range(K):
                for j in range(K):
                    if i != j:
                        tw[i] += sim[i, j] * d[j] if d[i] < d[j] else -sim[j, i] * d[i]
            check(np.allclose(o["tar_weights"].numpy(), tw, atol=1e-7), "trix: tar_weights recomputed")
            twm = torch.tensor(tw, dtype=torch.float32)[y]
            check(torch.equal(o["targeted"], (twm < twm.mean()).float()), "trix: targeted mask recomputed")
            la = fwd(o["x_adv"])
            pnf = F.softmax(ln, 1).clamp(min=1e-10)
            want = (F.cross_entropy(ln, y, reduction="none") * class_weights.float()[y]).mean() + beta * (
                pnf * (pnf.log() - F.log_softmax(la + 1e-10, 1))).sum(1).mean()
        check(abs(float(o["loss"]) - float(want)) < 1e-5, "trix: loss recomputed from x_adv")
        check(0 < float(o["targeted"].sum()) < B, "trix: batch has both targeted and untargeted samples")

        # 6. faal_dro (before 5: 5 uses its weights)
        for r, (m, c) in [(0.5, (rng.uniform(-1, 1, K), rng.integers(0, 4, K))),
                          (0.05, (rng.uniform(-1, 1, K), rng.integers(1, 4, K))),
                          (2.0, (rng.uniform(-1, 0, K), np.full(K, 12))),
                          (1.0, (rng.uniform(-1, 0, K), np.array([0, 0, 0, 5, 3, 1, 2, 7, 1, 1])))]:
            m[0] = -1.0  # (the last case: absent classes tie at the maximum a = 0)
            c = c.astype(np.float64)
            o = run("faal_dro", models_dir, "-", {"margin": torch.from_numpy(m), "counts": torch.from_numpy(c),
                                                   "params": torch.tensor([r], dtype=torch.float64)}, tmp)
            p = o["weights"].numpy()
            a = c * m
            check(o["weights"].dtype == torch.float64 and p.shape == (K,), f"faal_dro r={r}: weights [K] f64")
            check(abs(p.sum() - 1) < 1e-9 and p.min() >= 0, f"faal_dro r={r}: on the simplex")
            check(kl_div_sum(p) <= r + 1e-6, f"faal_dro r={r}: sum kl_div(1/K, p) = {kl_div_sum(p):.9g} <= r")
            pts = random_feasible(rng, K, r, 1000)
            best = max(float(a @ q) for q in pts)
            check(float(a @ p) >= best - 1e-12, f"faal_dro r={r}: objective {a @ p:.9g} >= best of 1000 random feasible {best:.9g}")
            cf = closed_form(a, r)
            check(np.abs(cf - p).max() < 1e-6, f"faal_dro r={r}: matches the closed form within 1e-6 "
                                               f"(max diff {np.abs(cf - p).max():.2e})")
        o = run("faal_dro", models_dir, "-", {"margin": torch.zeros(K, dtype=torch.float64),
                                              "counts": torch.ones(K, dtype=torch.float64),
                                              "params": torch.tensor([0.0], dtype=torch.float64)}, tmp)
        check(np.allclose(o["weights"].numpy(), 1 / K), "faal_dro r=0: uniform, as the reference")

        # 5. faal
        yf = torch.from_numpy(rng.integers(0, K - 1, B))  # class K-1 absent: its margin is NaN -> -1
        delta = (torch.rand_like(x) * 2 - 1) * eps
        weights = torch.from_numpy(rng.dirichlet(np.ones(K)))
        o = run("faal", models_dir, ckpt, {"x": x, "y": yf, "delta": delta, "weights": weights,
                                           "params": torch.tensor([K], dtype=torch.float64)}, tmp)
        x_adv = (x + delta).clamp(0, 1)
        o2 = run("faal", models_dir, ckpt, {"x": x, "y": yf, "x_adv": x_adv, "weights": weights,
                                            "params": torch.tensor([K], dtype=torch.float64)}, tmp)
        check(o["margin"].shape == (K,) and o["counts"].shape == (K,) and o["loss"].shape == (), "faal: shapes")
        check(torch.equal(o["loss"], o2["loss"]), "faal: delta input == x_adv input")
        with torch.no_grad():
            out = fwd(x_adv)
            pr = F.softmax(out, 1)
            onehot = F.one_hot(yf, K).bool()
            mw = pr.masked_fill(onehot, -1).max(1).values - pr[onehot]
            want_m = torch.tensor([mw[yf == c].mean() if (yf == c).any() else -1.0 for c in range(K)])
            want_l = (F.cross_entropy(out, yf, reduction="none") * weights.float()[yf]).sum() * K / B
        check(torch.allclose(o["margin"], want_m, atol=1e-6) and float(o["margin"][K - 1]) == -1.0,
              "faal: per-class margins recomputed (absent class -> -1)")
        check(torch.equal(o["counts"], torch.bincount(yf, minlength=K).float()), "faal: counts")
        check(abs(float(o["loss"]) - float(want_l)) < 1e-5, "faal: AT loss recomputed")

    print(f"{len(FAILS)} failed")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
