import json

import numpy as np
import pytest

from mmlaws.errors import DataError
from mmlaws.laws import RunLogWriter, read_csv, read_runs


def _write_run(folder, run_id, N, tokens, loss, datasets=None, finish=True,
               convention="non_embedding"):
    datasets = datasets or {"text": 1.0}
    with RunLogWriter(folder, {"run_id": run_id, "datasets": datasets, "N": N,
                               "N_convention": convention, "objective": "cm3"}) as w:
        w.write({"kind": "step", "step": 1, "tokens": tokens / 2, "loss": loss + 1,
                 "loss_per_modality": {"text": loss + 1}, "grad_norm": 1.0, "lr": 1e-3})
        w.write({"kind": "event", "step": 1, "type": "grad_spike", "grad_norm": 9.0})
        if finish:
            w.write({"kind": "final", "step": 2, "tokens": tokens, "loss": loss,
                     "tokens_per_dataset": {k: v * tokens for k, v in datasets.items()},
                     "loss_per_dataset": {k: loss for k in datasets}})
    return folder / f"{run_id}.jsonl"


def test_a_table_refuses_runs_that_count_N_two_ways(tmp_path):
    _write_run(tmp_path, "a", 1e6, 1e8, 3.0)
    _write_run(tmp_path, "b", 2e6, 1e8, 2.5, convention="total")
    with pytest.raises(DataError, match=r"count N two ways: non_embedding \(.*a.jsonl\), "
                                        r"total \(.*b.jsonl\)"):
        read_runs(tmp_path)


def test_round_trip_and_selection(tmp_path):
    _write_run(tmp_path, "a", 1e6, 1e8, 3.0)
    _write_run(tmp_path, "b", 2e6, 1e8, 2.5)
    _write_run(tmp_path, "c", 2e6, 2e8, 2.4, datasets={"text": 0.5, "code": 0.5})
    table = read_runs(tmp_path)
    assert len(table) == 3
    text = table.select(["text"])
    np.testing.assert_array_equal(text.N, [1e6, 2e6])
    np.testing.assert_array_equal(text.loss, [3.0, 2.5])
    pair = table.select(["text", "code"])
    assert pair.tokens[0] == {"text": 1e8, "code": 1e8}
    rec = pair.records[0]
    assert rec.events[0]["type"] == "grad_spike"
    tok, val = rec.curve("loss_per_modality.text")
    np.testing.assert_array_equal(val, [3.4])


def test_truncated_last_line_is_skipped_with_warning_naming_the_file(tmp_path):
    path = _write_run(tmp_path, "killed", 1e6, 1e8, 3.0, finish=False)
    with path.open("a") as fh:
        fh.write('{"kind": "step", "step": 2, "tok')
    _write_run(tmp_path, "done", 2e6, 1e8, 2.5)
    with pytest.warns(UserWarning, match="killed.jsonl"):
        table = read_runs(tmp_path)
    assert list(table.run_id) == ["done"]


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    path = _write_run(tmp_path, "bad", 1e6, 1e8, 3.0)
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        read_runs(path)


def test_header_checks(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps({"kind": "header", "run_id": "x", "datasets": {"a": 0.3},
                             "N": 1, "N_convention": "total"}) + "\n")
    with pytest.raises(DataError, match="shares summing to 1"):
        read_runs(p)


def test_csv_reader(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text("N,D,loss\n1e6,1e8,3.1\n2e6,1e8,2.9\n")
    t = read_csv(p)
    np.testing.assert_array_equal(t.D, [1e8, 1e8])
    p.write_text("Model Size,Training FLOP,loss\n1e6,6e14,3.1\n")
    t = read_runs(p, n_column="Model Size", flops_column="Training FLOP")
    np.testing.assert_allclose(t.D, [1e8])
    p.write_text("N,D,loss\n1e6,abc,3.1\n")
    with pytest.raises(DataError, match="row 2"):
        read_csv(p)
    p.write_text("N,loss\n1e6,3.1\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['D'\]"):
        read_csv(p)
