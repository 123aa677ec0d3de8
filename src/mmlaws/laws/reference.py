"""Eq. 3 in plain numpy with its analytic gradient.

An implementation independent of the jitted fitter: tests check the JAX objective against it and
benchmarks time scipy's L-BFGS-B with it, the way the published replications ran their fits.
"""

from __future__ import annotations

import numpy as np


def unimodal_objective(p, log_n, log_d, log_l, delta):
    """(value, gradient) of Σ Huber_δ(LSE(a − α log N, b − β log D, e) − log L) at ``p``.

    ``p = (a, b, e, alpha, beta)``; data arrays are [R].
    """
    a, b, e, alpha, beta = p
    t = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])  # [3, R]
    m = t.max(0)
    w = np.exp(t - m)
    s = w.sum(0)
    r = m + np.log(s) - log_l
    h = np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    hp = np.clip(r, -delta, delta) * w / s  # [3, R]: dHuber/dr · softmax weights
    g = [hp[0].sum(), hp[1].sum(), hp[2].sum(), -(hp[0] * log_n).sum(), -(hp[1] * log_d).sum()]
    return h.sum(), np.array(g)
