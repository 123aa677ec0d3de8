"""The paper's training phenomena (§6) from run records: pure numpy/scipy, no training imports.

* :mod:`~mmlaws.analysis.flatness` — flatness percentage per source modality (Phenomena 1–2,
  Figure 7), with the criterion stated in its module docstring.
* :mod:`~mmlaws.analysis.ratio` — ½(L_i + L_j) / L_pair over training and the law's predicted
  final ratio (Figure 5); above 1 is synergy (Eq. 5; the paper's caption says the reverse).
* :mod:`~mmlaws.analysis.spikes` — gradient-norm spike counts and their correlation with
  log(N)/α_ij (Phenomenon 4, Figure 9).
* :mod:`~mmlaws.analysis.batch` — optimal batch size per modality and pair, and its correlation
  with β_ij (Phenomenon 3, Figure 8).
"""

from mmlaws.analysis._common import Correlation, correlate, interp_log_tokens
from mmlaws.analysis.batch import (
    OptimalBatch,
    batch_beta_correlation,
    batch_ratio,
    log_parabola_minimum,
    optimal_batch_size,
    optimal_batch_sizes,
)
from mmlaws.analysis.flatness import (
    flat_windows,
    flatness,
    flatness_alpha_correlation,
    flatness_percentage,
    running_median,
)
from mmlaws.analysis.ratio import (
    RatioCurve,
    competition_ratio,
    end_tokens,
    predicted_final_ratio,
    ratio_verdict,
)
from mmlaws.analysis.spikes import running_median_spikes, spike_correlation, spike_counts

__all__ = [
    "Correlation",
    "OptimalBatch",
    "RatioCurve",
    "batch_beta_correlation",
    "batch_ratio",
    "competition_ratio",
    "correlate",
    "end_tokens",
    "flat_windows",
    "flatness",
    "flatness_alpha_correlation",
    "flatness_percentage",
    "interp_log_tokens",
    "log_parabola_minimum",
    "optimal_batch_size",
    "optimal_batch_sizes",
    "predicted_final_ratio",
    "ratio_verdict",
    "running_median",
    "running_median_spikes",
    "spike_correlation",
    "spike_counts",
]
