"""Hugging Face OPT weights imported into mmlaws give the same logits."""

import functools

import jax
import numpy as np
import pytest

from mmlaws import model as M
from mmlaws.errors import ConfigError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

HF_KW = dict(vocab_size=97, hidden_size=48, num_hidden_layers=2, ffn_dim=192,
             num_attention_heads=3, max_position_embeddings=24, word_embed_proj_dim=48,
             do_layer_norm_before=True, activation_function="relu", enable_bias=True,
             dropout=0.0, attention_dropout=0.0)


def _random_opt(**changes):
    torch.manual_seed(0)
    model = transformers.OPTForCausalLM(transformers.OPTConfig(**{**HF_KW, **changes})).eval()
    with torch.no_grad():  # random LayerNorm affine terms, so that they are tested too
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def hf_model():
    return _random_opt()


def _hf_logits(model, tokens):
    with torch.no_grad():
        return model(torch.tensor(tokens)).logits.float().numpy()


def _max_diff(config, params, model, tokens):
    ours = jax.jit(functools.partial(M.logits, config))(params, tokens)
    return float(np.abs(np.asarray(ours) - _hf_logits(model, tokens)).max())


TOKENS = np.random.default_rng(0).integers(0, 97, size=(2, 11))


def test_state_dict_import_matches_hf_logits(hf_model):
    config, params = M.load_hf_opt(hf_model.state_dict(), num_heads=3, dropout=0.0)
    assert (config.num_layers, config.d_model, config.max_len) == (2, 48, 24)
    assert config.tie_embeddings and config.num_heads == 3 and config.d_ff == 192
    assert sum(x.size for x in jax.tree.leaves(params)) == M.total_params(config)
    assert _max_diff(config, params, hf_model, TOKENS) <= 1e-4


def test_untied_output_projection_is_imported():
    model = _random_opt(tie_word_embeddings=False)
    config, params = M.load_hf_opt(model.state_dict(), num_heads=3, dropout=0.0)
    assert not config.tie_embeddings and params["unembed"].shape == (48, 97)
    assert _max_diff(config, params, model, TOKENS) <= 1e-4


def test_safetensors_folder_import_matches_hf_logits(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path)  # config.json + model.safetensors (tied head dropped)
    assert list(tmp_path.glob("*.safetensors"))
    config, params = M.load_hf_opt(tmp_path, scan_layers=False, dropout=0.0)
    assert config.num_heads == 3 and not config.scan_layers
    assert _max_diff(config, params, hf_model, TOKENS) <= 1e-4


def test_single_safetensors_file_import(hf_model, tmp_path):
    state = {k: v.contiguous() for k, v in hf_model.state_dict().items() if k != "lm_head.weight"}
    safetensors_torch.save_file(state, tmp_path / "weights.safetensors")
    config, params = M.load_hf_opt(tmp_path / "weights.safetensors", num_heads=3, dropout=0.0)
    assert _max_diff(config, params, hf_model, TOKENS) <= 1e-4


def test_unsupported_variants_are_refused(hf_model):
    state = dict(hf_model.state_dict())
    with pytest.raises(ConfigError, match="num_heads"):
        M.load_hf_opt(state)
    post_norm = {k: v for k, v in state.items() if not k.startswith("model.decoder.final_layer")}
    with pytest.raises(ConfigError, match="post-norm"):
        M.load_hf_opt(post_norm, num_heads=3)
    projected = {**state, "model.decoder.project_in.weight": torch.zeros(48, 32)}
    with pytest.raises(ConfigError, match="project_in"):
        M.load_hf_opt(projected, num_heads=3)
