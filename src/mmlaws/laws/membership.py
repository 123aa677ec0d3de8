"""σ-membership (paper Eq. 1): are two datasets one modality?

    D_i ∈ D_j  ⇔  E_{x~D_i}[L_{D_j}(x)] ≤ σ² · E_{x~D_j}[L_{D_j}(x)]

where L_{D_j} is the loss of a model trained on D_j. The paper uses σ = 3. Two datasets are one
modality when each is a member of the other.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SIGMA = 3.0  # §3.1


def membership(cross_loss, *, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """``M[i, j]`` = D_i ∈ D_j, from ``cross_loss[i, j]`` = mean loss on D_i of the D_j model.

    >>> membership([[1.0, 5.0], [2.0, 1.0]]).tolist()
    [[True, True], [True, True]]
    >>> membership([[1.0, 12.0], [2.0, 1.0]]).tolist()
    [[True, False], [True, True]]
    """
    L = np.asarray(cross_loss, dtype=np.float64)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"cross_loss must be a square [datasets, datasets] matrix, got {L.shape}")
    if not np.all(np.isfinite(L)) or np.any(L <= 0):
        raise ValueError("cross_loss entries must be positive and finite")
    return L <= sigma**2 * np.diag(L)[None, :]


def same_modality(cross_loss, *, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Symmetric relation: D_i and D_j are one modality when each is a member of the other."""
    m = membership(cross_loss, sigma=sigma)
    return m & m.T
