"""mmlaws: scaling laws for generative mixed-modal language models, in JAX.

Subpackages (imported on demand, so that ``import mmlaws`` stays light), the foundations first;
which may import which is stated and checked in ``tests/test_import_directions.py``.

- :mod:`mmlaws.laws` — scaling-law forms, fitting, intervals, barriers, compute optima, design
  power, run records; trains nothing.
- :mod:`mmlaws.model` — the OPT-style decoder, Table 2 presets, parameter and FLOP counts.
- :mod:`mmlaws.objectives` — the CM3 causal-masking objective and the plain causal one.
- :mod:`mmlaws.data` — what runs while training: vocabulary layout, shards, packing, exact
  token-share mixtures, the grain loader, the SeqIO path.
- :mod:`mmlaws.corpora` — building datasets before training: sources, tokenizers, builders.
- :mod:`mmlaws.train` — settings, the sharded train step and loop, checkpoints, run folders.
- :mod:`mmlaws.analysis` — the paper's training phenomena on run records.
- :mod:`mmlaws.plan` — the run planner (``mmlaws plan``).
- :mod:`mmlaws.study` — a study end to end: design, design power, the stacked engine, fits,
  report.

Where things live: "where do batches come from" → :mod:`mmlaws.data` (a dataset on disk comes
from :mod:`mmlaws.corpora`); "how is a run trained" → :mod:`mmlaws.train` (one run) or
:mod:`mmlaws.study.engine` (many runs stacked); "how is a law fitted" → :mod:`mmlaws.laws.fit`
and :func:`mmlaws.laws.fit_table`; the entry point is :mod:`mmlaws.main`.

None of them imports TensorFlow; the seqio integration is the only module that does.
"""

__version__ = "0.1.0"
