"""What a plan is asked: the budget (:class:`Budget`) and how to plan (:class:`PlanSettings`).
Each default is stated here once, with where it comes from."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from mmlaws.errors import ConfigError
from mmlaws.model.hardware import PEAK_BF16_FLOPS, peak_flops


def _positive(name: str, value, integer: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0 or (integer and int(value) != value):
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{name}={value!r}: the budget must be {kind}")


@dataclasses.dataclass(frozen=True)
class Budget:
    """A compute budget: training FLOPs, or accelerator-hours of a named accelerator at an MFU.

    - ``accelerator``: a name :func:`mmlaws.model.hardware.peak_flops` knows; ``"a100"`` by
      default, the paper's 80 GB A100s (§4.5).
    - ``mfu``: model-FLOPs utilisation turning peak FLOP/s into training FLOP/s; 0.4 by default
      (an assumption typical of dense decoders, not a figure from the paper).
    - ``devices``: accelerators trained on at once, for the wall-clock time; 64 by default
      ("the majority of experiments used 64 GPUs at a time", §4.5).
    """

    flops: float | None = None
    hours: float | None = None  # accelerator-hours
    accelerator: str = "a100"
    mfu: float = 0.4
    devices: int = 64

    def __post_init__(self):
        if (self.flops is None) == (self.hours is None):
            raise ConfigError("give the budget as FLOPs or as accelerator-hours (one of them)")
        _positive("flops" if self.flops is not None else "hours",
                  self.flops if self.flops is not None else self.hours)
        if peak_flops(self.accelerator) is None:
            raise ConfigError(f"accelerator={self.accelerator!r}: no known peak FLOP/s "
                              f"(known: {', '.join(PEAK_BF16_FLOPS)})")
        if not (isinstance(self.mfu, int | float) and 0 < self.mfu <= 1):
            raise ConfigError(f"mfu={self.mfu!r}: must be in (0, 1]")
        _positive("devices", self.devices, integer=True)

    @property
    def peak(self) -> float:
        """Peak dense bf16 FLOP/s of one accelerator."""
        return float(peak_flops(self.accelerator))

    @property
    def compute(self) -> float:
        """Training FLOPs the budget buys."""
        if self.flops is not None:
            return float(self.flops)
        return float(self.hours) * 3600.0 * self.peak * self.mfu

    def time(self, flops: float) -> dict:
        """Accelerator-hours and wall-clock on ``devices`` for ``flops`` at the MFU."""
        acc_hours = flops / (self.peak * self.mfu) / 3600.0
        return {"accelerator": self.accelerator, "mfu": self.mfu, "devices": self.devices,
                "accelerator_hours": acc_hours, "wall_clock_hours": acc_hours / self.devices,
                "wall_clock_days": acc_hours / self.devices / 24.0}


@dataclasses.dataclass(frozen=True)
class PlanSettings:
    """How a plan is made.

    - ``flops``: how training compute is counted: ``"architecture"`` (the real count,
      :func:`mmlaws.model.training_flops_per_token` of the Table 2 / OPT-family architectures,
      interpolated in N) or ``"6N"`` (Kaplan et al.'s 6ND, the count of Eq. 6 and Chinchilla).
    - ``mesh``: a named mesh (``{"fsdp": 8, "tensor": 8}``) to plan the nearest architecture's
      per-device memory on (:func:`mmlaws.train.memory.plan_memory`); None: no memory plan.
      ``device_gb`` (80, the paper's A100s), ``batch`` (rows per step; None: the architecture's
      batch tokens over its context), ``micro_batches`` and ``remat`` go with it.
    - ``data_dir``: built datasets (their ``stats.json``) to count the tokens each modality
      holds in ``split``; None: not checked. ``max_epochs``: more repeats than this is warned
      of (4: Muennighoff et al. 2023 find up to about 4 epochs nearly as good as unique data).
    - ``data_constrained``: also predict the losses with Muennighoff et al.'s effective data.
    - ``level``: the level of the intervals from bootstrap replicates.
    """

    flops: str = "architecture"
    mesh: Mapping[str, int] | None = None
    device_gb: float = 80.0
    batch: int | None = None
    micro_batches: int = 1
    remat: str = "full"
    data_dir: str | None = None
    split: str = "train"
    max_epochs: float = 4.0
    data_constrained: bool = False
    level: float = 0.95

    def __post_init__(self):
        if self.flops not in ("architecture", "6N"):
            raise ConfigError(f"flops={self.flops!r}: expected 'architecture' or '6N'")
        if self.mesh is not None:
            bad = {k: v for k, v in dict(self.mesh).items()
                   if not isinstance(v, int) or isinstance(v, bool) or v < 1}
            if bad or not self.mesh:
                raise ConfigError(f"mesh={dict(self.mesh)!r}: axis sizes must be integers >= 1")
        if not 0 < self.level < 1:
            raise ConfigError(f"level={self.level!r}: must be in (0, 1)")
