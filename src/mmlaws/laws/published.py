"""Published scaling-law coefficients, as data with their source.

Aghajanyan et al. (2023), "Scaling Laws for Generative Mixed-Modal Language Models":

- ``TABLE1``: uni-modal laws (Eq. 2) per modality, fitted with the CM3 objective (Table 1).
- ``TABLE3``: Speech and Text laws under CM3 and under the plain causal objective (Table 3).
- ``PAPER_DESIGN_N`` / ``PAPER_DESIGN_D``: the model sizes of the uni-modal sweep (§5.1, Table 2
  names, 8M to 6.7B) and its three data sizes (5B, 10B, 100B tokens).
- ``HUBER_DELTA``: δ of the Huber loss in Eq. 3 (§5.1).
- ``SPEECH_TEXT_OPTIMUM``: the compute-optimal barrier-breaking point the paper reports for
  Speech|Text (§5.2.2). The bi-modal coefficients behind it are not in the text, so only the point
  is kept, as a fact to cite.

Hoffmann et al. (2022) and Besiroglu et al. (2024, Epoch AI's replication) are kept for the
Chinchilla fits that the fitter is checked against; ``MUENNIGHOFF_R_STAR`` holds the decay
constants of repeated data and excess parameters of Muennighoff et al. (2023).

**Units: the published laws predict perplexity** (:data:`PUBLISHED_QUANTITY`), not nats per token.
The paper never states the unit of 𝓛; the evidence, read both ways:

- *Magnitudes.* With raw N and D, Table 1 gives at 1.3B parameters and 100B tokens: text 21.25,
  image-text 68.89, image 57.64, speech 3.72, speech-text 3.45, molecules 2.72, code 1.77. As nats
  per token, text, image and image-text exceed ln 2^16 = 11.09, the loss of a uniform guess over
  the whole vocabulary (§4.2), and image exceeds even ln 8192 = 9.01 of its own codebook:
  impossible for a trained model. As perplexities they are ordinary (text 21.3 = 3.06 nats, image
  57.6 = 4.05 nats per VQ token, code 1.77 = 0.57 nats).
- *Words.* §5.2.2 plots the Figure 5 ratio written with 𝓛, ½(𝓛(N, Text) + 𝓛(N, Speech)) /
  𝓛(N, [Speech, Text]), and describes it as "the average of the Speech and Text models
  perplexity ... by Speech | Text perplexity"; §3.1 defines modality by perplexity and writes
  Eq. 1 with 𝓛; Figures 6–7 and the restart policy (§4.5) speak of perplexities.
- *Eq. 3 as printed* regresses LSE(a − α log N, b − β log D, e), the log of Eq. 2's value, on
  L_i itself, not on log L_i as Hoffmann et al. do: if L_i was the logged cross-entropy (nats),
  Eq. 2's value is its exponential, a perplexity.

What is inconsistent with that reading, and stays so: Code's E = 0.16 < 1 is impossible as a
perplexity floor (the code law predicts 0.49 at N = 1e12, D = 1e13; plans flag a perplexity
below 1 as outside the law); Eq. 4's ½[𝓛_i + 𝓛_j] is the loss of two independent models on a
50/50 test set only in nats (the pair's perplexity is the geometric mean of the two, below
their arithmetic mean, so C_ij read in perplexities carries that gap); and §5.1 calls the Text
coefficients "similar to those reported by Chinchilla", whose law is in nats. Read as nats,
however, the laws contradict the vocabulary at every one of the paper's own design points, so
perplexity is the reading used here: plans from published laws report perplexity and its log,
nats per token. Laws fitted by mmlaws say what they were fitted on (``quantity``, nats by
default; :class:`mmlaws.laws.FitSettings` can fit perplexities instead).
"""

from __future__ import annotations

from mmlaws.laws.forms import UnimodalLaw

_T1 = "Aghajanyan et al. 2023, Table 1"
_T3 = "Aghajanyan et al. 2023, Table 3"

# What Table 1 and Table 3's 𝓛 is, with the evidence in the module docstring.
PUBLISHED_QUANTITY = "perplexity"

# modality: (A, B, E, alpha, beta)
_TABLE1_ROWS = {
    "code": (611.91, 4484.08, 0.16, 0.37, 0.32),
    "image-text": (320.51, 658.31, 2.47, 0.12, 0.11),
    "image": (340.96, 875.30, 2.84, 0.13, 0.13),
    "molecules": (158.19, 189.36, 2.39, 0.37, 0.26),
    "speech-text": (180.68, 234.13, 2.69, 0.32, 0.24),
    "speech": (154.45, 205.10, 3.02, 0.31, 0.24),
    "text": (492.51, 1987.40, 2.42, 0.18, 0.22),
}
_TABLE3_ROWS = {
    "speech (cm3)": (154.45, 205.10, 3.02, 0.31, 0.24),
    "speech (causal)": (164.12, 201.00, 3.01, 0.30, 0.24),
    "text (cm3)": (492.51, 1987.40, 2.42, 0.18, 0.22),
    "text (causal)": (485.16, 1859.32, 2.45, 0.17, 0.23),
}


def _law(row: tuple[float, ...], source: str) -> UnimodalLaw:
    A, B, E, alpha, beta = row
    return UnimodalLaw(E=E, A=A, B=B, alpha=alpha, beta=beta, source=source,
                       quantity=PUBLISHED_QUANTITY)


TABLE1: dict[str, UnimodalLaw] = {k: _law(v, _T1) for k, v in _TABLE1_ROWS.items()}
TABLE3: dict[str, UnimodalLaw] = {k: _law(v, _T3) for k, v in _TABLE3_ROWS.items()}

# §5.1: "seven different model sizes, from 8 million to 6.7 billion ... (5B, 10B, 100B)".
PAPER_DESIGN_N: tuple[float, ...] = (8e6, 125e6, 350e6, 760e6, 1.3e9, 2.7e9, 6.7e9)
PAPER_DESIGN_D: tuple[float, ...] = (5e9, 10e9, 100e9)

# §5.1, Eq. 3: "Huber_{σ=0.03}", higher than Hoffmann et al.'s 1e-3, "which was necessary for
# generalization to held-out data in our multi-modal setting" (Epoch's replication uses 1e-3).
HUBER_DELTA = 0.03

# §5.2.2: predicted compute-optimal point that breaks the Speech|Text competition barrier,
# validated with a 30B model trained on 50B tokens.
SPEECH_TEXT_OPTIMUM = {"N": 28.35e9, "D": 45.12e9, "validated_with": {"N": 30e9, "D": 50e9}}

CHINCHILLA_HOFFMANN = UnimodalLaw(
    E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, source="Hoffmann et al. 2022, Approach 3"
)
CHINCHILLA_EPOCH_GRID = UnimodalLaw(
    E=1.8172, A=477.84, B=2143.86, alpha=0.3473, beta=0.3672,
    source="Besiroglu et al. 2024, replication of Approach 3 (best of the 4,500-start grid)",
)

# Muennighoff et al. 2023, "Scaling Data-Constrained Language Models", Eq. 5 and the fitted
# constants of §3.1: repeated tokens decay in value with R*_D = 15.4, excess parameters with
# R*_N = 5.3 (effective data D' = U + U R*_D (1 - exp(-R_D / R*_D)), R_D = repetitions).
MUENNIGHOFF_R_STAR = {"D": 15.4, "N": 5.3}
