"""PyTorch transcriptions of three robust-fairness methods' reference code, for cross-checks.

Usage: methods_ref.py CASE MODELS_DIR CHECKPOINT INPUTS OUT

References (read with `git show HEAD:<file>` in the mirrors):
  DAFA  github.com/rucy74/DAFA            commit c60ba83  losses.py  trades_loss, madry_loss
                                                           utils.py   calculate_class_weights
  TRIX  github.com/Fairness-a11y/TRIX     commit cdeb435  losses.py  mixed_trades_loss,
                                                                      calculate_class_weights_from_clean
  FAAL  github.com/TrustAI/FAAL           commit b20ee9d  ft_prn.py  training loop (cw, per-class
                                                                      margin, `--loss AT` loss)
                                                           FAAL.py    DAW (the KL-DRO, cvxpy there)
                                                           utils.py   pgd_attack (not transcribed:
                                                                      its result is an input here)

The functions are transcribed as literally as possible: same operations in the same order (eval-mode
attack, then `model.train()` and the train-mode forwards in the reference's order). The only changes:
no `.cuda()`; `optimizer.zero_grad()` dropped (no optimizer); every random draw is replaced by an
input tensor; scalars come from the float64 vector `params`; `args.n_class` is len(class_weights).

MODELS_DIR holds models.py (tests/py/models.py). CHECKPOINT is a fairtat `.safetensors` checkpoint
(metadata arch, in_channels, num_classes, image_size, optional normalization JSON {"mean","std"}), or
`-` for the cases that need no model (dafa_weights, faal_dro). The normalisation (if any) is applied
in front of the network, inside the differentiated function, as fairtat's Model does.
INPUTS is a safetensors file, OUT the safetensors file written here (float32 unless noted).

Train-mode dropout (SmallCNN has Dropout(0.5) after fc1 and no BatchNorm): the draw is an input
too. If INPUTS holds `dropout_masks` [F, B, 200] (keep flags 0/1, float), the n-th train-mode forward
of the case uses dropout_masks[n] as h * mask / (1 - 0.5), which is what F.dropout computes for that
keep mask. Without it, train-mode dropout is the identity (so for SmallCNN the train-mode forwards
equal the eval-mode ones). Train-mode forward order per case:
  dafa_trades: 0 = model(x_adv), 1 = model(x_natural)
  dafa_pgd_at: 0 = model(x_adv) (each of the two variants, each on a fresh copy of the model)
  trix:        0 = model(x_adv), 1 = model(x_natural)
  faal:        0 = model(X_adv), 1 = model(X)

Cases (inputs -> outputs; params):
  dafa_weights  probs [N,K] f64, labels [N] i64; params [lambda] -> weights [K] f64
  dafa_trades   x [B,C,H,W], y [B] i64, start [B,C,H,W] (= x + 0.001*randn), class_weights [K];
                params [eps, step_size, steps, beta] -> x_adv, loss (0-dim), probs [B,K]
                (probs = memory_dict softmax rows of the train-mode adversarial logits)
  dafa_pgd_at   same inputs; params [eps, step_size, steps] -> x_adv_reference, loss_reference
                (madry_loss verbatim, with its second unweighted step + uniform-eps projection) and
                x_adv, loss (the corrected variant: those two lines removed)
  trix          x, y, start, class_weights [K], rand_targets [B] i64 (!= y; replaces rand_y_t);
                params [eps, step_size, steps, beta] -> x_adv, loss (0-dim), tar_weights [K] f64,
                targeted [B] (use_targeted_mask)
  faal          x, y, x_adv (or delta: then x_adv = (x + delta).clamp(0, 1) as the reference),
                weights [K] (the DRO solution); params [num_classes]
                -> margin [K], counts [K], loss (0-dim)
  faal_dro      margin [K] f64, counts [K] f64; params [r] -> weights [K] f64
"""
import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.autograd import Variable


# ---------------------------------------------------------------------------------------------
# Model loading (check_checkpoint.py's) and the dropout-draw replacement


# The checkpoint loading of check_checkpoint.py, beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_checkpoint import build, load_models_module  # noqa: E402


class MaskDropout(nn.Module):
    """nn.Dropout(p) whose train-mode draws are given: the n-th train-mode call uses masks[n]."""

    def __init__(self, p, masks):
        super().__init__()
        self.p = p
        self.masks = masks
        self.calls = 0

    def forward(self, x):
        if not self.training or self.masks is None:
            return x
        if self.calls >= len(self.masks):
            raise SystemExit(f"dropout_masks holds {len(self.masks)} masks; forward {self.calls} needs one more")
        mask = self.masks[self.calls].to(x.dtype)
        self.calls += 1
        return x * mask / (1.0 - self.p)


class Normalized(nn.Module):
    """(x - mean) / std in front of the network, as fairtat's Model applies its normalisation."""

    def __init__(self, net, norm):
        super().__init__()
        self.net = net
        self.norm = norm
        if norm is not None:
            self.register_buffer("mean", torch.tensor(norm["mean"], dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(norm["std"], dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        if self.norm is not None:
            x = (x - self.mean) / self.std
        return self.net(x)


def load_model(models_dir, checkpoint, dropout_masks):
    with safe_open(checkpoint, framework="pt") as f:
        meta = f.metadata() or {}
    net = build(load_models_module(models_dir), meta)
    net.load_state_dict(load_file(checkpoint), strict=True)
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(parent, name, MaskDropout(child.p, dropout_masks))
    norm = json.loads(meta["normalization"]) if "normalization" in meta else None
    model = Normalized(net, norm)
    model.eval()
    return model, int(meta["num_classes"])


def reset_dropout_draws(model):
    for m in model.modules():
        if isinstance(m, MaskDropout):
            m.calls = 0


class Args:
    """Stands in for the reference's argparse namespace."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


# ---------------------------------------------------------------------------------------------
# DAFA (rucy74/DAFA c60ba83)


def calculate_class_weights(memory_dict, lamb=1.0):
    # utils.py, verbatim
    probs, labels = memory_dict['probs'], memory_dict['labels']
    num_classes = len(np.unique(labels))
    class_similarity = np.zeros((num_classes, num_classes))
    class_weights = np.ones(num_classes)

    for i in range(num_classes):
        cur_indices = np.where(labels == i)[0]
        class_similarity[i] = np.mean(probs[cur_indices], axis=0)

    for i in range(num_classes):
        for j in range(num_classes):
            if i == j: continue
            if class_similarity[i, i] < class_similarity[j, j]:
                class_weights[i] += lamb * class_similarity[i, j] * class_similarity[j, j]
            else:
                class_weights[i] -= lamb * class_similarity[j, i] * class_similarity[i, i]

    return class_weights


def dafa_trades_loss(model, x_natural, y, start, args, class_weights, batch_indices=None, memory_dict=None):
    # losses.py trades_loss; `start` replaces x_natural + 0.001 * torch.randn(...)
    if args is not None:
        step_size, perturb_steps, epsilon = args.pgd_step_size, args.pgd_num_steps, args.epsilon
        beta = args.beta

    loss_dict = {}

    # define KL-loss
    criterion_kl = nn.KLDivLoss(reduction='sum')

    model.eval()  # moving to eval mode to freeze batchnorm stats
    batch_size = len(x_natural)

    ## dafa masking
    class_weights_mask = torch.zeros(len(y))
    for i in range(args.n_class):
        cur_indices = np.where(y.detach().cpu().numpy() == i)[0]
        class_weights_mask[cur_indices] = class_weights[i]

    # generate adversarial example
    # was: x_adv = x_natural.detach() + 0.  # the + 0. is for copying the tensor
    #      x_adv += 0.001 * torch.randn(x_natural.shape).cuda().detach()
    x_adv = start.detach().clone()

    logits_nat = model(x_natural)

    for i in range(perturb_steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            logits = model(x_adv)
            loss_kl = criterion_kl(F.log_softmax(logits, dim=1), F.softmax(logits_nat, dim=1))

        grad = torch.autograd.grad(loss_kl, [x_adv])[0]

        x_adv = x_adv.detach() + (class_weights_mask * step_size).view(-1, 1, 1, 1) * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x_natural - (class_weights_mask * epsilon).view(-1, 1, 1, 1)),
                          x_natural + (class_weights_mask * epsilon).view(-1, 1, 1, 1))

        x_adv = torch.clamp(x_adv, 0.0, 1.0)

    x_adv = Variable(x_adv, requires_grad=False)

    model.train()
    # optimizer.zero_grad()

    logits = model(x_adv)
    logits_nat = model(x_natural)

    loss_natural = (torch.nn.CrossEntropyLoss(reduction='none')(logits_nat, y) * class_weights_mask).mean()
    loss_dict['natural'] = loss_natural.item()

    p_natural = F.softmax(logits_nat, dim=1)
    loss_robust = criterion_kl(F.log_softmax(logits, dim=1), p_natural) / batch_size

    loss_dict['robust'] = loss_robust.item()
    loss = loss_natural + beta * loss_robust

    if memory_dict is not None:
        memory_dict['probs'][batch_indices] = F.softmax(logits, dim=1).detach().cpu().numpy()
        memory_dict['labels'][batch_indices] = y.detach().cpu().numpy()

    return loss, loss_dict, x_adv


def dafa_madry_loss(model, x_natural, y, start, args, class_weights, second_step=True):
    # losses.py madry_loss; `start` replaces x_natural + 0.001 * torch.randn(...).
    # second_step=False is the corrected variant: the unweighted second step and its uniform-eps
    # projection are removed (weighted step, weighted projection, clamp).
    if args is not None:
        step_size, perturb_steps, epsilon = args.pgd_step_size, args.pgd_num_steps, args.epsilon

    criterion_ce = torch.nn.CrossEntropyLoss()
    model.eval()

    loss_dict = {}

    ## dafa masking
    class_weights_mask = torch.zeros(len(y))
    for i in range(args.n_class):
        cur_indices = np.where(y.detach().cpu().numpy() == i)[0]
        class_weights_mask[cur_indices] = class_weights[i]

    x_adv = start.detach().clone()  # was: x_natural.detach() + 0.001 * torch.randn(x_natural.shape).cuda().detach()

    for i in range(perturb_steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            logits = model(x_adv)
            loss_ce = criterion_ce(logits, y)
        grad = torch.autograd.grad(loss_ce, [x_adv])[0]
        x_adv = x_adv.detach() + (class_weights_mask * step_size).view(-1, 1, 1, 1) * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x_natural - (class_weights_mask * epsilon).view(-1, 1, 1, 1)),
                          x_natural + (class_weights_mask * epsilon).view(-1, 1, 1, 1))
        if second_step:
            x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
            x_adv = torch.min(torch.max(x_adv, x_natural - epsilon), x_natural + epsilon)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)

    x_adv = Variable(x_adv, requires_grad=False)

    model.train()
    # optimizer.zero_grad()

    logits = model(x_adv)

    loss_robust = (torch.nn.CrossEntropyLoss(reduction='none')(logits, y) * class_weights_mask).mean()
    loss = loss_robust

    loss_dict['robust'] = loss_robust.item()
    loss_dict['total'] = loss.item()

    return loss, loss_dict, x_adv


# ---------------------------------------------------------------------------------------------
# TRIX (Fairness-a11y/TRIX cdeb435)


def calculate_class_weights_from_clean(probs, labels, num_classes, lamb=1.0, epsilon=1e-8):
    # losses.py, verbatim
    class_similarity = np.zeros((num_classes, num_classes))
    class_weights = np.ones(num_classes)

    for i in range(num_classes):
        cur_indices = np.where(labels == i)[0]
        if len(cur_indices) > 0:
            class_similarity[i] = np.mean(probs[cur_indices], axis=0)

    class_similarity += epsilon * np.eye(num_classes)

    for i in range(num_classes):
        for j in range(num_classes):
            if i == j:
                continue
            if class_similarity[i, i] < class_similarity[j, j]:
                class_weights[i] += lamb * class_similarity[i, j] * class_similarity[j, j]
            else:
                class_weights[i] -= lamb * class_similarity[j, i] * class_similarity[i, i]

    return class_weights


def mixed_trades_loss(model, x_natural, y, start, rand_targets, args, class_weights,
                      y_t=None, batch_indices=None, memory_dict=None):
    # losses.py mixed_trades_loss; `start` replaces x_natural + 0.001 * torch.randn_like(x_natural),
    # `rand_targets` replaces the rand_y_t draw (and its redraw loop).
    step_size, perturb_steps, epsilon = args.pgd_step_size, args.pgd_num_steps, args.epsilon
    beta = args.beta
    n_class = args.n_class
    batch_size = len(x_natural)
    device = x_natural.device

    loss_dict = {}

    # --- Class weight masking
    class_weights_mask = torch.zeros_like(y, dtype=torch.float, device=device)
    for i in range(n_class):
        class_weights_mask[y == i] = class_weights[i]

    # --- Initial adversarial perturbation
    x_adv = start.detach().clone()  # was: x_natural.detach() + 0.001 * torch.randn_like(x_natural)

    model.eval()
    logits_nat = model(x_natural).detach()

    tar_weights = calculate_class_weights_from_clean(
        probs=F.softmax(logits_nat, dim=1).detach().cpu().numpy(),
        labels=y.detach().cpu().numpy(),
        num_classes=args.n_class
    )
    tar_weights_mask = torch.zeros_like(y, dtype=torch.float, device=device)
    for i in range(n_class):
        idx = (y == i)
        tar_weights_mask[idx] = tar_weights[i]

    use_targeted_mask = (tar_weights_mask < tar_weights_mask.mean()).float()

    num_targeted = int(use_targeted_mask.sum().item())
    num_untargeted = int((1 - use_targeted_mask).sum().item())

    # --- Generate y_t != y for targeted samples
    rand_y_t = rand_targets.clone()  # was: torch.randint(low=0, high=n_class, size=y.shape, device=device)
    mask_same = rand_y_t == y
    if mask_same.any():  # the reference redraws these; the input must already avoid them
        raise SystemExit("rand_targets equals y somewhere; the reference would redraw there")
    y_t = y.clone()
    y_t[use_targeted_mask.bool()] = rand_y_t[use_targeted_mask.bool()]

    for _ in range(perturb_steps):
        x_adv.requires_grad_()

        with torch.enable_grad():
            logits_adv = model(x_adv)

            loss_targeted = F.cross_entropy(logits_adv, y_t, reduction='none')  # (B,)

            p_nat = F.softmax(logits_nat, dim=1).clamp(min=1e-10)  # (B, C)
            logp_adv = F.log_softmax(logits_adv + 1e-10, dim=1)
            loss_untargeted = (p_nat * (p_nat.log() - logp_adv)).sum(dim=1)  # (B,)

            mixed_loss = use_targeted_mask * loss_targeted + (1 - use_targeted_mask) * loss_untargeted
            loss = mixed_loss.mean()  # scalar

        grad = torch.autograd.grad(loss, [x_adv])[0]

        direction = -torch.sign(grad) * use_targeted_mask.view(-1, 1, 1, 1) + \
                     torch.sign(grad) * (1 - use_targeted_mask).view(-1, 1, 1, 1)

        x_adv = x_adv.detach() + (class_weights_mask * step_size).view(-1, 1, 1, 1) * direction
        x_adv = torch.max(torch.min(
            x_adv,
            x_natural + (class_weights_mask.view(-1, 1, 1, 1) * epsilon)),
            x_natural - (class_weights_mask.view(-1, 1, 1, 1) * epsilon)
        )
        x_adv = torch.clamp(x_adv, 0.0, 1.0)

    model.train()
    # optimizer.zero_grad()
    x_adv = x_adv.detach()

    # --- Final loss computation
    logits_adv = model(x_adv)
    logits_nat = model(x_natural)

    loss_natural = (F.cross_entropy(logits_nat, y, reduction='none') * class_weights_mask).mean()
    loss_dict['natural'] = loss_natural.item()

    p_nat_final = F.softmax(logits_nat, dim=1).clamp(min=1e-10)
    logp_adv_final = F.log_softmax(logits_adv + 1e-10, dim=1)
    loss_robust = (p_nat_final * (p_nat_final.log() - logp_adv_final)).sum(dim=1).mean()
    loss_dict['robust'] = loss_robust.item()

    loss_dict['num_targeted'] = num_targeted
    loss_dict['num_untargeted'] = num_untargeted

    total_loss = loss_natural + beta * loss_robust

    return total_loss, loss_dict, x_adv, tar_weights, use_targeted_mask


# ---------------------------------------------------------------------------------------------
# FAAL (TrustAI/FAAL b20ee9d)


def cw(outputs, y, num_classes):
    # ft_prn.py cw, with the hard-coded 10 / 9 generalised to num_classes / num_classes - 1
    outputs = F.softmax(outputs, 1)

    label_mask = torch.nn.functional.one_hot(y, num_classes).to(torch.bool)
    label_logit = outputs[label_mask]
    others = outputs[~label_mask].reshape(-1, num_classes - 1)
    top_other_logit, _ = torch.max(others, dim=1)

    margin_w = (top_other_logit - label_logit)

    return margin_w


def faal_at_step(model, X, y, X_adv, weights, num_classes):
    # ft_prn.py, the body of the batch loop for `--loss AT` after the attack:
    #   perturbation = pgd_attack(...); X_adv = (X + perturbation.detach()).clamp(0, 1)  -> input
    #   weights = FAAL_DRO.solve_weight(y, class_margin)                                 -> input
    # normalize(., mu, std) is inside `model`.
    criterion = nn.CrossEntropyLoss(reduction='none')
    model.train()

    # opt.zero_grad()
    output = model(X_adv)
    output_clean = model(X)
    loss_margin = cw(output, y, num_classes)
    loss_ce = criterion(output, y)

    class_margin = torch.zeros((num_classes))
    class_ce = torch.zeros((num_classes))
    class_n = torch.zeros((num_classes))

    for cc in range(num_classes):
        class_margin[cc] += (loss_margin[y == cc]).mean()
        class_ce[cc] += (loss_ce[y == cc]).mean()
        class_n[cc] += 1 / (y == cc).sum()
    class_margin = torch.where(torch.isnan(class_margin), -torch.ones_like(class_margin), class_margin)

    valid_num = len(class_margin)

    weights = weights.float()  # the reference's DAW returns torch.from_numpy(p.value).float()
    loss = (loss_ce * weights[y]).sum() * valid_num / len(y)

    counts = torch.stack([(y == cc).sum() for cc in range(num_classes)]).float()
    return loss, class_margin, counts, output_clean


def faal_dro_solve(margin, counts, r):
    """The DRO of FAAL.py (DAW._initialise_FAAL_problem + solve_weight), without cvxpy.

    Reference problem (N = train_batch_size = K classes, Pemp = 1/K, nn_loss = class margins m):
        maximise  sum_i p[y_i] * m[y_i]  = a . p,   a_c = counts_c * m_c
        s.t.      sum(p) == 1,  p >= 0,  sum_c kl_div(1/K, p_c) <= r
    cvxpy's kl_div(x, y) = x log(x/y) - x + y; on the simplex the -x + y terms cancel, so the
    constraint is f(p) = KL(u || p) = -log K - (1/K) sum_c log p_c <= r.
    With r <= 0 the reference returns ones(K) / K; if a is constant every feasible p is optimal and
    the uniform point is returned.

    Method (independent of the closed form p_c ~ mu / (nu - a_c)):
      1. Log-barrier interior-point method on the one inequality constraint: for t = 1, 10, ...,
         1e10 maximise  t * a~ . p + log(r - f(p))  over {sum p = 1} by damped Newton steps on the
         equality-constrained problem (KKT system [H 1; 1^T 0]), with backtracking that keeps
         p > 0 and f(p) < r; a~ = (a - mean a) / (max a - min a) (same maximiser). The central
         point at t is within objective gap 1/t of the optimum.
      2. Polish: damped Newton iterations on the full KKT system in (v = log p, l = log lambda, nu),
             a~_c - nu + exp(l - v_c) / K = 0,  sum exp(v) = 1,  -log K - mean(v) = r,
         started from the barrier point (lambda = 1 / (t (r - f)), nu = mean(a~ + lambda/(K p))),
         each step halved until the residual's max-norm decreases; the iterate with the smallest
         residual is kept.
      3. Weights of classes with exactly equal a_c are averaged (see the comment there).
    Stage 2 solves the stationarity conditions the closed form comes from, but jointly by Newton from
    the barrier point, not by a 1-D search over nu. On a sweep (K in 2..100, r in 1e-8..50, with
    ties) the barrier stage alone is within 1.1e-9 of the closed form (bisection on nu) and the
    polished result within 6e-13, with f(p) <= r + 1e-14.
    """
    margin = np.asarray(margin, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    K = len(margin)
    u = np.ones(K) / K
    if not r > 0:
        return u
    a = counts * margin
    span = a.max() - a.min()
    if not span > 0:
        return u
    a = (a - a.mean()) / span
    logK = np.log(K)

    def kl(p):
        return -logK - np.mean(np.log(p))

    def gain(p, dp, t):
        # phi(p + dp) - phi(p) for phi = t a.p + log(r - f(p)), computed without forming the large
        # t a.p terms (their cancellation would swamp the comparison at large t); -inf if infeasible
        q = p + dp
        if np.any(q <= 0):
            return -np.inf
        s_new = r - kl(q)
        if not s_new > 0:
            return -np.inf
        return t * (a @ dp) + np.log(s_new / (r - kl(p)))

    p = u.copy()
    ones = np.ones(K)
    t = 1.0
    while True:
        for _ in range(200):
            s = r - kl(p)
            g = -1.0 / (K * p)                                   # grad f
            grad = t * a - g / s                                 # grad of t a.p + log(r - f)
            H = -np.outer(g, g) / s ** 2 - np.diag(1.0 / (K * p ** 2)) / s
            kkt = np.zeros((K + 1, K + 1))
            kkt[:K, :K] = H
            kkt[:K, K] = ones
            kkt[K, :K] = ones
            sol = np.linalg.solve(kkt, np.concatenate([-grad, [0.0]]))
            dp = sol[:K]
            dp -= dp.sum() / K                                   # keep sum p = 1 exactly
            decrement = -dp @ H @ dp
            if not decrement / 2 > 1e-15:
                break
            step, slope = 1.0, grad @ dp
            while gain(p, step * dp, t) < 0.25 * step * slope:
                step *= 0.5
                if step < 1e-20:
                    break
            if step < 1e-20:
                break
            p = p + step * dp
            p /= p.sum()
        if t >= 1e10:
            break
        t *= 10.0

    # 2. KKT polish, in log coordinates p = exp(v), lambda = exp(l) (tiny values stay well conditioned):
    #    a_c - nu + exp(l - v_c) / K = 0,  sum exp(v) = 1,  -log K - mean(v) = r;
    #    damped Newton (halving the step until the residual's max-norm decreases).
    def residual(z):
        v, ell, nu = z[:K], z[K], z[K + 1]
        with np.errstate(over="ignore", invalid="ignore"):
            return np.concatenate([a - nu + np.exp(ell - v) / K, [np.exp(v).sum() - 1.0, -logK - np.mean(v) - r]])

    s = r - kl(p)
    lam = 1.0 / (t * s)
    z = np.concatenate([np.log(p), [np.log(lam), np.mean(a + lam / (K * p))]])
    res = np.abs(residual(z)).max()
    best, best_res = p, res
    for _ in range(100):
        v, ell, nu = z[:K], z[K], z[K + 1]
        q, e = np.exp(v), np.exp(ell - v) / K
        J = np.zeros((K + 2, K + 2))
        J[:K, :K] = np.diag(-e)
        J[:K, K] = e
        J[:K, K + 1] = -1.0
        J[K, :K] = q
        J[K + 1, :K] = -1.0 / K
        try:
            dz = np.linalg.solve(J, -residual(z))
        except np.linalg.LinAlgError:
            break
        step = 1.0
        while step > 1e-10:
            zn = z + step * dz
            rn = np.abs(residual(zn)).max() if np.all(np.isfinite(zn)) else np.inf
            if rn < res:
                break
            step *= 0.5
        if not rn < res:
            break
        z, res = zn, rn
        if res < best_res:
            q = np.exp(z[:K])
            best, best_res = q / q.sum(), res
        if res < 1e-15:
            break
    # 3. Exact ties in a: the maximiser is unique (a linear objective over a strictly convex
    #    set, a not constant) and so symmetric under swapping classes with equal a; average within
    #    each tie group (keeps the objective, and by convexity of f stays feasible). This fixes
    #    the numerically flat direction p_i - p_j between tied classes (e.g. absent classes, a = 0).
    best = best.copy()
    for value in np.unique(a):
        group = a == value
        if group.sum() > 1:
            best[group] = best[group].mean()
    return best


# ---------------------------------------------------------------------------------------------


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def main():
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    case, models_dir, checkpoint, inputs_path, out_path = sys.argv[1:]
    inp = load_file(inputs_path)
    params = inp["params"].to(torch.float64).tolist() if "params" in inp else []
    masks = inp.get("dropout_masks")
    out = {}

    if case == "dafa_weights":
        memory_dict = {"probs": inp["probs"].double().numpy(), "labels": inp["labels"].long().numpy()}
        w = calculate_class_weights(memory_dict, lamb=params[0])
        out["weights"] = torch.from_numpy(np.asarray(w, dtype=np.float64))

    elif case == "faal_dro":
        w = faal_dro_solve(inp["margin"].double().numpy(), inp["counts"].double().numpy(), params[0])
        out["weights"] = torch.from_numpy(np.asarray(w, dtype=np.float64))

    elif case in ("dafa_trades", "dafa_pgd_at", "trix", "faal"):
        model, _ = load_model(models_dir, checkpoint, masks)
        torch.set_grad_enabled(True)
        x = inp["x"].float()
        y = inp["y"].long()
        if case == "faal":
            num_classes = int(params[0])
            x_adv = inp["x_adv"].float() if "x_adv" in inp else (x + inp["delta"].float()).clamp(0, 1)
            loss, margin, counts, _ = faal_at_step(model, x, y, x_adv, inp["weights"], num_classes)
            out.update(margin=f32(margin), counts=f32(counts), loss=f32(loss))
        else:
            start = inp["start"].float()
            cw_in = inp["class_weights"].double()
            class_weights = [float(v) for v in cw_in]
            args = Args(epsilon=params[0], pgd_step_size=params[1], pgd_num_steps=int(params[2]),
                        beta=params[3] if len(params) > 3 else None, n_class=len(class_weights))
            if case == "dafa_trades":
                K = len(class_weights)
                memory_dict = {"probs": np.zeros((len(y), K), dtype=np.float32),
                               "labels": np.zeros(len(y), dtype=np.int64)}
                loss, _, x_adv = dafa_trades_loss(model, x, y, start, args, class_weights,
                                                  batch_indices=np.arange(len(y)), memory_dict=memory_dict)
                out.update(x_adv=f32(x_adv), loss=f32(loss), probs=torch.from_numpy(memory_dict["probs"]))
            elif case == "dafa_pgd_at":
                ref_model = copy.deepcopy(model)
                loss_r, _, x_adv_r = dafa_madry_loss(ref_model, x, y, start, args, class_weights, second_step=True)
                fix_model = copy.deepcopy(model)
                reset_dropout_draws(fix_model)
                loss_c, _, x_adv_c = dafa_madry_loss(fix_model, x, y, start, args, class_weights, second_step=False)
                out.update(x_adv_reference=f32(x_adv_r), loss_reference=f32(loss_r),
                           x_adv=f32(x_adv_c), loss=f32(loss_c))
            else:  # trix
                loss, _, x_adv, tar_weights, targeted = mixed_trades_loss(
                    model, x, y, start, inp["rand_targets"].long(), args, class_weights)
                out.update(x_adv=f32(x_adv), loss=f32(loss),
                           tar_weights=torch.from_numpy(np.asarray(tar_weights, dtype=np.float64)),
                           targeted=f32(targeted))
    else:
        raise SystemExit(f"unknown case {case!r}")

    save_file({k: v.contiguous() for k, v in out.items()}, out_path)
    print(json.dumps({"case": case, "outputs": {k: list(v.shape) for k, v in out.items()}}))


if __name__ == "__main__":
    main()
