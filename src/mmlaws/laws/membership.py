"""σ-membership (paper Eq. 1): are two datasets one modality?

    D_i ∈ D_j  ⇔  E_{x~D_i}[𝓛_{D_j}(x)] ≤ σ² · E_{x~D_j}[𝓛_{D_j}(x)]          (Eq. 1)

where 𝓛_{D_j} is measured with a model trained on D_j. The paper uses σ = 3 (§3.1).

**Which quantity 𝓛 is.** The paper writes 𝓛 for perplexities (§5.2.2 plots "the ratio of the
average of the Speech and Text models perplexity … by Speech | Text perplexity" as
½(𝓛_i + 𝓛_j)/𝓛_{i,j}), and §3.1's prose defines modality "by comparing the perplexity of one
data set to another … We use the standard definition of perplexity". So Eq. 1 is read on
perplexities, ppl = exp(loss in nats): D_i ∈ D_j when the cross perplexity is at most σ² times
the in-domain one, i.e. when the cross loss exceeds the in-domain loss by at most
``2 ln σ`` nats (2.20 nats at σ = 3). Two other readings exist and are **not** used:

- the prose's "greater than σ times the mean perplexity" (a gap of ``ln σ`` = 1.10 nats): it
  contradicts the equation's square; where the two disagree the equation is followed;
- Eq. 1 applied to losses in nats (cross loss ≤ 9 × in-domain loss at σ = 3): a threshold so
  loose that nearly any two token streams would be one modality.

The functions take losses in nats per token (what mmlaws logs) and compare perplexities.
Two datasets are one modality when each is a member of the other.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SIGMA = 3.0  # §3.1


def membership(cross_loss, *, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """``M[i, j]`` = D_i ∈ D_j, from ``cross_loss[i, j]`` = mean loss (nats per token) on D_i
    of the model trained on D_j: ``exp(L[i, j]) ≤ σ² exp(L[j, j])``.

    >>> membership([[1.0, 3.0], [2.0, 1.0]]).tolist()  # 2.0 nats above: within 2 ln 3
    [[True, True], [True, True]]
    >>> membership([[1.0, 3.5], [2.0, 1.0]]).tolist()  # 2.5 nats above: distinct
    [[True, False], [True, True]]
    """
    L = np.asarray(cross_loss, dtype=np.float64)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"cross_loss must be a square [datasets, datasets] matrix, got {L.shape}")
    if not np.all(np.isfinite(L)) or np.any(L <= 0):
        raise ValueError("cross_loss entries must be positive and finite")
    if not sigma >= 1:
        raise ValueError(f"sigma={sigma} must be at least 1")
    return L - np.diag(L)[None, :] <= 2.0 * np.log(sigma)


def same_modality(cross_loss, *, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Symmetric relation: D_i and D_j are one modality when each is a member of the other."""
    m = membership(cross_loss, sigma=sigma)
    return m & m.T
