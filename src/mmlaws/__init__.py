"""mmlaws: scaling laws for generative mixed-modal language models, in JAX.

Subpackages (imported on demand, so that ``import mmlaws`` stays light):

- :mod:`mmlaws.laws` — scaling-law forms, fitting, barriers, compute optima, run records.
- :mod:`mmlaws.model` — the OPT-style decoder, Table 2 presets, parameter and FLOP counts.
- :mod:`mmlaws.objectives` — the CM3 causal-masking objective and the plain causal one.
- :mod:`mmlaws.data` — vocabulary layout, tokenizers, mixtures, loaders.
- :mod:`mmlaws.train` — sharded training loop, checkpoints, metrics.
- :mod:`mmlaws.analysis` — training phenomena, plots and reports.

None of them imports TensorFlow; the seqio integration is the only module that does.
"""

__version__ = "0.1.0"
