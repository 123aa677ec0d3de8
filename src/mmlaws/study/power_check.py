"""Design power of a study before its compute: which parameters of Eq. 2 its runs can pin down.

:func:`check_design` takes a study :class:`~mmlaws.study.settings.Design`, finds the (N, D) of
each dataset's uni-modal law runs (N the model's total parameter count at the layout's
vocabulary, as run headers record it, :func:`mmlaws.model.total_params`; D each budget, once
per seed), plants a law on them, refits noisy copies as the study will, and returns one
:class:`~mmlaws.laws.power.DesignPower` per dataset (bias, spread, fraction of refits at the
grid's edge, and with ``coverage`` the coverage of the 95% profile intervals;
:func:`mmlaws.laws.power.design_power`). The planted law is by default the dataset's Table 1
law (Aghajanyan et al. 2023; Code's for a dataset Table 1 does not have) moved to the design
by :func:`~mmlaws.laws.power.rescale_law` from the paper's sizes and budgets (§5.1). Table 1's
laws predict perplexity (:data:`mmlaws.laws.PUBLISHED_QUANTITY`); planted as they are, they
carry the paper's balance of the three terms of Eq. 2 onto the design.

:func:`runs_power` does the same on the (N, D) of runs already trained (the report's
fallback when the study folder has no ``design_power.json``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mmlaws.errors import DataError
from mmlaws.laws.forms import UnimodalLaw
from mmlaws.laws.power import DesignPower, design_power, rescale_law
from mmlaws.laws.published import PAPER_DESIGN_D, PAPER_DESIGN_N, TABLE1
from mmlaws.laws.records import RunTable
from mmlaws.model import total_params
from mmlaws.study.design import budgets_of, model_config
from mmlaws.study.settings import DataBuild, Design, PowerSettings

# Study dataset names whose Table 1 row is spelled otherwise.
TABLE1_NAMES = {"images": "image", "image_text": "image-text", "speech_text": "speech-text"}
FALLBACK_LAW = "code"  # Table 1's row planted for datasets Table 1 does not have


def table1_law(dataset: str) -> UnimodalLaw:
    """The Table 1 law of a study dataset (Code's when Table 1 has no such modality)."""
    return TABLE1.get(TABLE1_NAMES.get(dataset, dataset), TABLE1[FALLBACK_LAW])


def design_sizes(design: Design, layout: str | None = None) -> dict[str, float]:
    """``{model name: total parameters}`` of the design's models at ``layout``'s vocabulary
    (default :class:`~mmlaws.study.settings.DataBuild`'s)."""
    layout = DataBuild.layout if layout is None else layout
    return {m: float(total_params(model_config(design, m, layout))) for m in design.models}


def design_runs(design: Design, layout: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) [R] of the uni-modal law runs every dataset of ``design`` gets: each model ×
    budget (within the design's ``tokens_per_parameter`` band), repeated per seed
    (:func:`mmlaws.study.design.plan`'s law runs of one dataset)."""
    layout = DataBuild.layout if layout is None else layout
    sizes = design_sizes(design, layout)
    pts = [(sizes[m], float(b)) for m in design.models for b in budgets_of(design, m, layout)
           for _ in range(design.seeds.get(m, 1))]
    N, D = (np.array(v, np.float64) for v in zip(*pts, strict=True))
    return N, D


def _law_for(dataset: str, law, N, D) -> UnimodalLaw:
    if isinstance(law, UnimodalLaw):
        return law
    if isinstance(law, Mapping) and dataset in law:
        return law[dataset]
    return rescale_law(table1_law(dataset), N, D, reference_N=PAPER_DESIGN_N,
                       reference_D=PAPER_DESIGN_D)


def power_of_points(points: Mapping[str, tuple], law=None,
                    settings: PowerSettings = PowerSettings()) -> dict[str, DesignPower | str]:
    """``{dataset: DesignPower}`` of each dataset's (N, D) runs, or why it has none (a line)."""
    out: dict[str, DesignPower | str] = {}
    if not settings.replicates:
        return out
    for name, (N, D) in points.items():
        planted = _law_for(name, law, N, D)
        try:
            out[name] = design_power(
                N, D, planted, noise=settings.noise, replicates=settings.replicates,
                coverage=settings.coverage, seed=settings.seed, criteria=settings.criteria,
                name=f"Eq. 2 on {name} (planted: {planted.source or 'the given law'})")
        except (DataError, ValueError) as err:
            out[name] = f"no design power for {name}: {err}"
    return out


def check_design(design: Design, law: UnimodalLaw | Mapping[str, UnimodalLaw] | None = None,
                 *, layout: str | None = None,
                 settings: PowerSettings = PowerSettings()) -> dict[str, DesignPower | str]:
    """Plants a law on each dataset's uni-modal runs of ``design``, refits, reports power.

    Args:
      design: the study's runs; each dataset alone gets every model × budget (× seeds).
      law: the law planted on every dataset, or ``{dataset: law}``; a dataset without one gets
        its Table 1 law rescaled to the design (:func:`table1_law`).
      layout: the vocabulary layout that sets each model's N (default DataBuild's).
      settings: noise, replicates, profile coverage, criteria (:class:`PowerSettings`).
    Returns: ``{dataset: DesignPower}``, or a line saying why a dataset has none (too few runs,
      one size or one budget).
    """
    N, D = design_runs(design, layout)
    return power_of_points({d: (N, D) for d in design.datasets}, law, settings)


def runs_power(table: RunTable, settings: PowerSettings = PowerSettings()):
    """:func:`check_design` on runs already trained: each single dataset's (N, D)."""
    singles = [d[0] for d in table.dataset_sets() if len(d) == 1]
    points = {}
    for name in singles:
        sub = table.select((name,))
        points[name] = (np.asarray(sub.N, np.float64), np.asarray(sub.D, np.float64))
    return power_of_points(points, None, settings)


def power_lines(powers: Mapping[str, DesignPower | str]) -> list[str]:
    """The lines that :func:`check_design`'s result prints, one block per dataset."""
    lines = []
    for p in powers.values():
        lines += [p] if isinstance(p, str) else p.lines()
    return lines


def as_results(powers: Mapping[str, DesignPower | str]) -> dict:
    """JSON-ready ``{dataset: DesignPower.as_dict() | {"error": line}}``."""
    return {k: {"error": p} if isinstance(p, str) else p.as_dict() for k, p in powers.items()}
