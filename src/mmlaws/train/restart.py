"""The restart policy of §4.5 and the non-finite-loss stop.

§4.5: "if training perplexities do not decrease after 500 million tokens, the training run is
restarted with a reduced learning rate with a factor of 0.8". Here: when the training loss
(equivalently perplexity) has not gone below its best value for ``window_tokens`` tokens, the
loop restores the last checkpoint and continues with the learning rate × ``lr_factor``.
"""

from __future__ import annotations

import dataclasses
import math

from mmlaws.errors import ConfigError, UserError

WINDOW_TOKENS = 500e6  # §4.5
LR_FACTOR = 0.8  # §4.5


class NonFiniteLossError(UserError):
    """Too many consecutive non-finite losses; the last checkpoint holds the last good state."""


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    """``window_tokens`` and ``lr_factor`` of §4.5 (``window_tokens=0``: no restarts);
    ``max_nonfinite`` consecutive skipped updates stop the run."""

    window_tokens: float = WINDOW_TOKENS
    lr_factor: float = LR_FACTOR
    max_nonfinite: int = 10

    def __post_init__(self):
        number = lambda v: (isinstance(v, int | float) and not isinstance(v, bool)
                            and math.isfinite(v))
        if not number(self.window_tokens) or self.window_tokens < 0:
            raise ConfigError(f"RestartPolicy.window_tokens={self.window_tokens!r}: expected a "
                              f"number ≥ 0 (0: no restarts)")
        if not number(self.lr_factor) or not 0 < self.lr_factor <= 1:
            raise ConfigError(f"RestartPolicy.lr_factor={self.lr_factor!r}: expected a number "
                              f"in (0, 1]")
        if (isinstance(self.max_nonfinite, bool) or not isinstance(self.max_nonfinite, int)
                or self.max_nonfinite < 1):
            raise ConfigError(f"RestartPolicy.max_nonfinite={self.max_nonfinite!r}: expected "
                              f"an integer ≥ 1")


class PlateauWatch:
    """Tracks the best training loss and the tokens seen when it was reached."""

    def __init__(self, window_tokens: float, best: float = float("inf"), best_tokens: float = 0.0):
        self.window_tokens, self.best, self.best_tokens = window_tokens, best, best_tokens

    def update(self, loss: float, tokens: float) -> bool:
        """Record a step's loss at ``tokens`` seen; True when the window passed with no decrease."""
        if loss < self.best:
            self.best, self.best_tokens = loss, tokens
            return False
        return self.window_tokens > 0 and tokens - self.best_tokens >= self.window_tokens

    def reset(self, tokens: float) -> None:
        self.best, self.best_tokens = float("inf"), tokens

    def get_state(self) -> dict:
        return {"best": self.best if self.best != float("inf") else None,
                "best_tokens": self.best_tokens}

    def set_state(self, state: dict) -> None:
        best = state.get("best")
        self.best = float("inf") if best is None else float(best)
        self.best_tokens = float(state["best_tokens"])
