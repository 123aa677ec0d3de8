"""Peak dense bf16 FLOP/s of accelerators, for model-FLOPs utilisation (MFU).

Vendor datasheet figures for dense (not 2:4 sparse) bf16 matmuls, per chip.
"""

from __future__ import annotations

# jax ``device_kind`` substring (lower case) → peak dense bf16 FLOP/s.
PEAK_BF16_FLOPS = {
    "h100": 989e12,  # H100 SXM
    "h200": 989e12,  # same tensor cores as H100 SXM
    "a100": 312e12,
    "tpu v4": 275e12,
    "tpu v5 lite": 197e12,  # v5e
    "tpu v5e": 197e12,
    "tpu v5p": 459e12,
    "tpu v5": 459e12,  # v5p reports itself as "TPU v5"
}


def peak_flops(device_kind: str) -> float | None:
    """Peak bf16 FLOP/s of ``device_kind`` (``jax.devices()[0].device_kind``); None if unknown."""
    kind = device_kind.lower()
    for key, flops in PEAK_BF16_FLOPS.items():
        if key in kind:
            return flops
    return None


def mfu(flops_per_token: float, tokens_per_second: float, num_devices: int, device_kind: str):
    """Model FLOPs utilisation: achieved model FLOP/s over the devices' peak; None if unknown."""
    peak = peak_flops(device_kind)
    if peak is None:
        return None
    return flops_per_token * tokens_per_second / (peak * num_devices)
