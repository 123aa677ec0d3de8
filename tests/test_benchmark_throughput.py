"""benchmarks/model_throughput.py times the real step on a tiny CPU config and prints its
figures, the last line in the agreed form."""

import importlib.util
import re

import numpy as np


def _module(repo_root):
    spec = importlib.util.spec_from_file_location(
        "model_throughput", repo_root / "benchmarks" / "model_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_cpu_smoke(repo_root, capsys):
    bench = _module(repo_root)
    out = bench.main(["--preset", "tiny", "--layout", "tiny", "--context", "128", "--batch", "4",
                      "--micro_batches", "2", "--steps", "2", "--warmup", "2",
                      "--doc_len", "16", "64", "--dtype", "float32"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"throughput: tiny MFU n/a \(causal-halved n/a\), [\d,]+ tok/s", last)
    assert out["docs_per_row"] > 1.5  # packed rows: several documents and their segment ids
    assert out["tokens_per_s"] > 0 and out["planned_bytes"] > 0 and out["skipped"] == 0
    assert np.isfinite(out["last_loss"])


def test_packed_batches_hold_several_documents_per_row(repo_root):
    from mmlaws.data.vocab import TINY

    batches = _module(repo_root).packed_batches(TINY, batch=4, context=256, doc_len=(20, 60),
                                                pool=2)
    assert len(batches) == 2 and batches[0]["segment_ids"].max() >= 3
    assert set(np.unique(batches[0]["dataset_ids"])) >= {0, 1}
