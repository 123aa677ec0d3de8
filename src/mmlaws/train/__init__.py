"""Sharded training: the paper's recipe (§4.5), the train step, checkpoints, restarts, logs.

Public API::

    train(output_dir=..., data=SyntheticBatches(...), total_steps=...)   # the loop (gin job)
    Recipe, make_optimizer, learning_rate_schedule                     # AdamW recipe of §4.5
    train_step, jit_steps                                              # the pure step

Modules: ``optimizer`` (recipe), ``state``, ``step``, ``vocab_parallel`` (shard_map
cross-entropy), ``metrics``, ``checkpoint`` (orbax), ``restart`` (§4.5 policy), ``runlog``
(JSONL, mirrored to wandb and TensorBoard as ``Tracking`` says), ``tensorboard`` (event files),
``distributed`` (several processes), ``synthetic`` (a token source), ``memory`` (per-device
memory planner), ``loop``.
"""

from mmlaws.train.loop import train
from mmlaws.train.optimizer import Recipe, learning_rate_schedule, make_optimizer
from mmlaws.train.restart import NonFiniteLossError, RestartPolicy
from mmlaws.train.runlog import Tracking
from mmlaws.train.state import TrainState, init_state
from mmlaws.train.step import jit_steps, train_step
from mmlaws.train.synthetic import SyntheticBatches

__all__ = [
    "NonFiniteLossError",
    "Recipe",
    "RestartPolicy",
    "SyntheticBatches",
    "Tracking",
    "TrainState",
    "init_state",
    "jit_steps",
    "learning_rate_schedule",
    "make_optimizer",
    "train",
    "train_step",
]
