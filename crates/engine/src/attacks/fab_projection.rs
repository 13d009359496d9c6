//! Batched L-inf projection onto a hyperplane intersected with the [0,1] box, ported from
//! fra31/auto-attack `autoattack/fab_projections.py` `projection_linf` (FAB, Croce & Hein 2020,
//! Appendix: the minimal-L-inf step `d` with `w.(t+d) = b`, `t + d` in [0,1]^D).
//!
//! For a radius lambda the best box-feasible move toward the hyperplane saturates every
//! coordinate at `min(lambda, room)` in the direction of `sign(w)`; the reached value of
//! `w.d` is piecewise linear and monotone in lambda with breakpoints at the per-coordinate room
//! `p`. Sorting `p` and cumulating gives that function at every breakpoint; a bisection over
//! the sorted breakpoints (ceil(log2 D) steps) finds the segment that hits `b`, and lambda is
//! solved in closed form there. The reference's other case (`c_l`: the hyperplane lies beyond
//! the last breakpoint) moves every coordinate by one lambda along `sign(w)`. The reference restricts the bisection to the rows that need it with
//! boolean indexing; here every row runs it and `where` selects per row, which gives the same
//! values (the other rows' results are discarded, NaNs included).

use tch::{Kind, Tensor};

/// Step `d` [N, D] projecting each row of `t` [N, D] onto `{z : w.z = b} ∩ [0,1]^D` in L-inf
/// (`w` [N, D], `b` [N]); coordinates with `w = 0` do not move.
pub fn projection_linf(t: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let (n, dim) = (t.size()[0], t.size()[1]);
    let dev = t.device();
    let float = |m: &Tensor| m.to_kind(Kind::Float);
    let row_dot = |u: &Tensor, v: &Tensor| (u * v).sum_dim_intlist(1, false, Kind::Float);
    let nonzero = float(&w.ne(0.0));

    // Orient the hyperplane so that t lies on its non-negative side.
    let sign = float(&(row_dot(w, t) - b).ge(0.0)) * 2.0 - 1.0;
    let w = w * sign.unsqueeze(1);
    let b = b * &sign;

    // a = 1 where w < 0 (that coordinate moves up toward 1), d = room to the far box face.
    let a = float(&w.lt(0.0));
    let d = (&a - t) * &nonzero;
    let p = &a - t * (&a * 2.0 - 1.0);
    let indp = p.argsort(1, false);

    let b = b - row_dot(&w, t);
    let b0 = row_dot(&w, &d);

    let indp2 = indp.flip([1]);
    let ws = w.gather(1, &indp2, false);
    let bs2 = -&ws * d.gather(1, &indp2, false);
    let s = ws.abs().cumsum(1, Kind::Float);
    let sb = bs2.cumsum(1, Kind::Float) + b0.unsqueeze(1);

    let last = |m: &Tensor| m.select(1, dim - 1);
    let p_min = p.gather(1, &indp.narrow(1, 0, 1), false).squeeze_dim(1);
    let b2 = last(&sb) - last(&s) * p_min;
    let c_l = (&b - &b2).gt(0.0);
    let c2 = (&b - &b0).gt(0.0).logical_and(&(&b - &b2).le(0.0));

    // Bisection over breakpoints, on every row (only rows in c2 use the result).
    let mut lb = Tensor::zeros([n], (Kind::Float, dev));
    let mut ub = Tensor::full([n], (dim - 1) as f64, (Kind::Float, dev));
    let nitermax = (dim as f64).log2().ceil() as usize;
    for _ in 0..nitermax {
        let counter4 = ((&lb + &ub) / 2.0).floor();
        let counter2 = counter4.to_kind(Kind::Int64).unsqueeze(1);
        let indcurr = indp.gather(1, &(-&counter2 + (dim - 1)), false);
        let b2 = (sb.gather(1, &counter2, false)
            - s.gather(1, &counter2, false) * p.gather(1, &indcurr, false))
        .squeeze_dim(1);
        let c = (&b - b2).gt(0.0);
        lb = counter4.where_self(&c, &lb);
        ub = ub.where_self(&c, &counter4);
    }
    let lb = lb.to_kind(Kind::Int64).unsqueeze(1);

    // Case c_l: one lambda for every coordinate, along sign(w).
    let lmbd_l = ((&b - last(&sb)) / (-last(&s))).clamp_min(0.0).unsqueeze(1);
    let d_l = (&a * 2.0 - 1.0) * lmbd_l;
    // Segment found: lambda in closed form, each coordinate capped by its room.
    let sb_lb = sb.gather(1, &lb, false).squeeze_dim(1);
    let s_lb = s.gather(1, &lb, false).squeeze_dim(1);
    let lmbd2 = ((&b - sb_lb) / (-s_lb)).clamp_min(0.0).unsqueeze(1);
    let one_minus_a = a.ones_like() - &a;
    let d_2 = d.minimum(&lmbd2) * &a + d.maximum(&(-&lmbd2)) * one_minus_a;

    let d = d_l.where_self(&c_l.unsqueeze(1), &d_2.where_self(&c2.unsqueeze(1), &d));
    d * nonzero
}
