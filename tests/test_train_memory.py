"""The memory planner reads XLA's compiled per-device memory of the train step."""

from mmlaws.model import PRESETS, total_params
from mmlaws.train.memory import plan_memory


def test_plan_counts_the_state_and_decides_fit():
    mesh = {"fsdp": 4, "tensor": 2}
    small = plan_memory("tiny", mesh, batch=8, seq_len=32, device_gb=1.0, remat="none")
    big = plan_memory("tiny", mesh, batch=32, seq_len=128, device_gb=1e-6, remat="none")
    # Parameters plus two Adam moments, float32, split over 8 devices (small tensors may be
    # replicated, so at least that and at most all of it on one device).
    state_bytes = 3 * 4 * total_params(PRESETS["tiny"])
    assert state_bytes / 8 <= small.arguments <= state_bytes + 8 * 32 * 4 * 6
    assert small.aliased > 0  # the donated state is reused for the new state
    assert small.fits and not big.fits
    assert big.temporaries > small.temporaries
    assert "fits in 1 GB" in small.summary() and "does NOT fit" in big.summary()
