"""The gradient-norm spike rule, shared by training (which logs ``grad_spike`` events) and the
analysis of run records (which recounts spikes from logged norms). Pure numpy.

Step t is a spike when at least ``min_history`` earlier norms have been seen and
``grad_norm[t] > factor × median(last `window` norms before t)``; every norm (spikes included)
joins the history.
"""

from __future__ import annotations

import collections

import numpy as np

# The defaults of training and of the analysis: k in ``norm > k × median``, the history length
# in steps, and the norms needed before any spike is called.
SPIKE_FACTOR = 5.0
SPIKE_WINDOW = 100
SPIKE_MIN_HISTORY = 10

class SpikeDetector:
    """Flags a gradient norm above ``factor`` × the median of the last ``window`` norms.

    No spike is called before ``min_history`` norms have been seen; spikes do join the
    history (a run of spikes raises the median, as a new regime should). Training feeds it one
    norm per step and logs a ``grad_spike`` event for each flag.

    >>> det = SpikeDetector(factor=3.0, min_history=3)
    >>> [det.update(g) for g in (1.0, 1.2, 0.8, 5.0, 1.0)]
    [None, None, None, 1.0, None]
    """

    def __init__(self, factor: float = SPIKE_FACTOR, window: int = SPIKE_WINDOW,
                 min_history: int = SPIKE_MIN_HISTORY):
        if factor <= 0 or window < 1 or min_history < 1:
            raise ValueError("need factor > 0, window >= 1 and min_history >= 1")
        self.factor, self.min_history = factor, min_history
        self.history: collections.deque = collections.deque(maxlen=window)
        self.count = 0

    def update(self, grad_norm: float) -> float | None:
        """Record a norm; returns the median it was compared with when it is a spike."""
        median = float(np.median(self.history)) if self.history else 0.0
        spike = len(self.history) >= self.min_history and grad_norm > self.factor * median
        self.history.append(grad_norm)
        if spike:
            self.count += 1
            return median
        return None


def running_median_spikes(
    grad_norm, *, factor: float = SPIKE_FACTOR, window: int = SPIKE_WINDOW,
    min_history: int = SPIKE_MIN_HISTORY,
) -> np.ndarray:
    """[T] bool: which norms are spikes under the running-median rule (:class:`SpikeDetector`).

    Args:
      grad_norm: [T] global gradient norms in logged order (before clipping).
      factor: k in ``norm > k × median``; window: history length in logged steps;
      min_history: norms needed before any spike is called.
    """
    det = SpikeDetector(factor, window, min_history)
    return np.array([det.update(g) is not None for g in np.asarray(grad_norm, np.float64)],
                    dtype=bool)
