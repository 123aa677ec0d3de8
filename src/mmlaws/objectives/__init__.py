"""Training objectives as pure-numpy document transforms: CM3 causal masking and plain causal.

Both return an :class:`~mmlaws.objectives.causal.Example` (inputs, targets, weights, spans).
Numpy only: no jax, TensorFlow or seqio, so they run in grain workers and ``tf.numpy_function``.
"""

from mmlaws.objectives import causal, cm3
from mmlaws.objectives.causal import Example

__all__ = ["Example", "causal", "cm3"]
