"""Import OPT weights in the Hugging Face layout (``model.decoder.*``) as mmlaws parameters.

Supported: pre-norm OPT (``do_layer_norm_before=True``) with biases, ReLU, and
``word_embed_proj_dim == hidden_size`` — the architecture of the paper's models and of every
OPT release except 350M. OPT stores ``max_positions + 2`` position rows because its position
ids start at 2 (a fairseq padding convention); the first two rows are dropped on import.

Sources: a ``.safetensors`` file, a folder of them (or a ``pytorch_model.bin``) with an optional
``config.json``, or an in-memory state dict of torch tensors or numpy arrays.
"""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np

from mmlaws.errors import ConfigError, DataError
from mmlaws.model.config import ModelConfig

POSITION_OFFSET = 2  # OPTLearnedPositionalEmbedding.offset
_LAYER_KEY = re.compile(r"decoder\.layers\.(\d+)\.")


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().to("cpu").float().numpy()
    return np.asarray(value, dtype=np.float32)


def _read_folder(folder: pathlib.Path) -> tuple[dict, dict]:
    hf_config = {}
    if (folder / "config.json").is_file():
        hf_config = json.loads((folder / "config.json").read_text())
    files = sorted(folder.glob("*.safetensors"))
    if files:
        from safetensors.numpy import load_file

        state = {}
        for f in files:
            state.update(load_file(f))
        return state, hf_config
    if (folder / "pytorch_model.bin").is_file():
        import torch

        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        return state, hf_config
    raise DataError(f"{folder}: no *.safetensors or pytorch_model.bin found")


def _read(source) -> tuple[dict, dict]:
    if isinstance(source, dict):
        return source, {}
    path = pathlib.Path(source)
    if path.is_dir():
        return _read_folder(path)
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        hf_config = {}
        if (path.parent / "config.json").is_file():
            hf_config = json.loads((path.parent / "config.json").read_text())
        return load_file(path), hf_config
    raise DataError(f"{path}: expected a .safetensors file or a checkpoint folder")


def _check_supported(state: dict, hf_config: dict) -> None:
    if any("project_in" in k or "project_out" in k for k in state) or (
        hf_config.get("word_embed_proj_dim", hf_config.get("hidden_size"))
        != hf_config.get("hidden_size")
    ):
        raise ConfigError("OPT with project_in/project_out (word_embed_proj_dim != hidden_size, "
                          "e.g. opt-350m) is not supported")
    pre_norm = hf_config.get("do_layer_norm_before", True)
    if not pre_norm or "decoder.final_layer_norm.weight" not in state:
        raise ConfigError("post-norm OPT (do_layer_norm_before=False, e.g. opt-350m) is not "
                          "supported; mmlaws decoders are pre-norm")
    activation = hf_config.get("activation_function", "relu")
    if activation != "relu":
        raise ConfigError(f"OPT activation {activation!r} is not supported (relu only)")
    if not hf_config.get("enable_bias", True) or "decoder.layers.0.fc1.bias" not in state:
        raise ConfigError("OPT without biases (enable_bias=False) is not supported")


def _layer(state: dict, i: int, num_heads: int) -> dict:
    p = f"decoder.layers.{i}."
    w = lambda name: _to_numpy(state[p + name])  # noqa: E731
    d = w("fc1.weight").shape[1]
    head = lambda name: w(f"self_attn.{name}.weight").T.reshape(d, num_heads, -1)  # [D, N, H]
    attn = {}
    for ours, theirs in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
        attn[f"{ours}_kernel"] = head(theirs)
        attn[f"{ours}_bias"] = w(f"self_attn.{theirs}.bias").reshape(num_heads, -1)  # [N, H]
    attn["out_kernel"] = w("self_attn.out_proj.weight").T.reshape(num_heads, -1, d)  # [N, H, D]
    attn["out_bias"] = w("self_attn.out_proj.bias")
    norm = lambda name: {"scale": w(f"{name}.weight"), "bias": w(f"{name}.bias")}  # noqa: E731
    return {
        "ln_attn": norm("self_attn_layer_norm"),
        "attn": attn,
        "ln_mlp": norm("final_layer_norm"),
        "mlp": {"wi_kernel": w("fc1.weight").T, "wi_bias": w("fc1.bias"),
                "wo_kernel": w("fc2.weight").T, "wo_bias": w("fc2.bias")},
    }


def load_hf_opt(path_or_state_dict, *, num_heads: int | None = None, scan_layers: bool = True,
                **config_changes) -> tuple[ModelConfig, dict]:
    """Read a Hugging Face OPT checkpoint → ``(ModelConfig, params)`` (float32 numpy arrays).

    The number of heads cannot be read off the weights: it comes from ``config.json`` beside the
    weights or from ``num_heads``. ``config_changes`` override other config fields (e.g. dtype).
    """
    raw, hf_config = _read(path_or_state_dict)
    state = {k.removeprefix("model."): v for k, v in raw.items()}
    _check_supported(state, hf_config)
    num_heads = num_heads or hf_config.get("num_attention_heads")
    if num_heads is None:
        raise ConfigError("load_hf_opt: pass num_heads= (no config.json gives num_attention_heads)")
    table = _to_numpy(state["decoder.embed_tokens.weight"])  # [V, D]
    positions = _to_numpy(state["decoder.embed_positions.weight"])[POSITION_OFFSET:]  # [max_len, D]
    num_layers = 1 + max(int(m.group(1)) for k in state if (m := _LAYER_KEY.search(k)))
    layers = [_layer(state, i, num_heads) for i in range(num_layers)]
    head = state.get("lm_head.weight")
    tied = head is None or np.array_equal(_to_numpy(head), table)
    vocab, d_model = table.shape
    config = ModelConfig(
        vocab_size=vocab, num_layers=num_layers, d_model=d_model, num_heads=num_heads,
        d_head=layers[0]["attn"]["query_kernel"].shape[-1],
        d_ff=layers[0]["mlp"]["wi_kernel"].shape[1], max_len=positions.shape[0],
        tie_embeddings=tied, scan_layers=scan_layers, **config_changes,
    )
    params = {
        "token_embed": table,
        "pos_embed": positions,
        "ln_final": {"scale": _to_numpy(state["decoder.final_layer_norm.weight"]),
                     "bias": _to_numpy(state["decoder.final_layer_norm.bias"])},
    }
    if scan_layers:
        params["layers"] = _stack(layers)
    else:
        params.update({f"layers_{i}": layer for i, layer in enumerate(layers)})
    if not tied:
        params["unembed"] = _to_numpy(head).T  # [D, V]
    return config, params


def _stack(layers: list[dict]) -> dict:
    """List of per-layer trees → one tree with a leading [L] axis."""
    first = layers[0]
    if isinstance(first, dict):
        return {k: _stack([layer[k] for layer in layers]) for k in first}
    return np.stack(layers)
