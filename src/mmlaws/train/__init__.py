"""Sharded training: the paper's recipe (§4.5), the train step, checkpoints, restarts, logs.

Public API::

    train(output_dir=..., data=SyntheticBatches(...), run=RunSettings(total_steps=...))
    RunSettings, LoopSettings                                          # the settings (gin)
    Recipe, make_optimizer, learning_rate_schedule                     # AdamW recipe of §4.5
    state_setup(config, recipe, mesh).init(rng)                        # the sharded state
    train_step, jit_steps                                              # the pure step

Modules: ``settings`` (run and loop settings, the plan), ``optimizer`` (recipe), ``state``,
``step``, ``vocab_parallel`` (shard_map cross-entropy), ``metrics``, ``checkpoint`` (orbax),
``restart`` (§4.5 policy), ``runlog`` (JSONL, mirrored to wandb and TensorBoard as
``Tracking`` says), ``tensorboard`` (event files), ``distributed`` (several processes),
``memory`` (per-device memory planner, compiled steps), ``loop``. Batches come from
:mod:`mmlaws.data` (the contract: :mod:`mmlaws.data.batch`).
"""

from mmlaws.data.synthetic import SyntheticBatches
from mmlaws.train.loop import train
from mmlaws.train.optimizer import Recipe, learning_rate_schedule, make_optimizer
from mmlaws.train.restart import NonFiniteLossError, RestartPolicy
from mmlaws.train.runlog import Tracking
from mmlaws.train.settings import LoopSettings, RunSettings
from mmlaws.train.state import StateSetup, TrainState, state_setup
from mmlaws.train.step import jit_steps, train_step

__all__ = [
    "LoopSettings",
    "NonFiniteLossError",
    "Recipe",
    "RestartPolicy",
    "RunSettings",
    "StateSetup",
    "SyntheticBatches",
    "Tracking",
    "TrainState",
    "jit_steps",
    "learning_rate_schedule",
    "make_optimizer",
    "state_setup",
    "train",
    "train_step",
]
