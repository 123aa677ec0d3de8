"""The run log's mirrors: wandb's mode and run ids (no network), TensorBoard event files."""

import os
import struct

import gin
import numpy as np
import pytest

from mmlaws.study import wandb_group
from mmlaws.train import runlog, tensorboard
from mmlaws.train.runlog import RunLog, Tracking, wandb_mode, wandb_run_id

HEADER = {"run_id": "code_w4_D307k", "datasets": {"code": 1.0}, "N": 252,
          "N_convention": "non_embedding", "objective": "cm3", "config": {}}


# --- the mode: online when logged in, offline otherwise, WANDB_MODE first -------------------

@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home folder: no ~/.netrc unless a test writes one."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def _netrc(folder, host="api.wandb.ai", password="k" * 40):
    path = folder / ".netrc"
    path.write_text(f"machine {host}\n  login user\n  password {password}\n")
    path.chmod(0o600)
    return path


def test_mode_offline_without_credentials(home):
    assert wandb_mode({}) == "offline"
    _netrc(home, host="example.org")  # a netrc for another host is no wandb login
    assert wandb_mode({}) == "offline"


def test_mode_online_when_logged_in(home):
    assert wandb_mode({"WANDB_API_KEY": "k" * 40}) == "online"
    assert wandb_mode({"WANDB_IDENTITY_TOKEN_FILE": "/some/token"}) == "online"
    _netrc(home)  # what `wandb login` writes
    assert wandb_mode({}) == "online"


def test_mode_follows_the_server_and_netrc_path(home, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    path = _netrc(other, host="wandb.example.org")
    env = {"NETRC": str(path)}
    assert wandb_mode(env) == "offline"  # the public host has no entry there
    assert wandb_mode({**env, "WANDB_BASE_URL": "https://wandb.example.org"}) == "online"


def test_wandb_mode_overrides(home):
    _netrc(home)
    assert wandb_mode({"WANDB_MODE": "offline"}) == "offline"
    assert wandb_mode({"WANDB_MODE": "disabled", "WANDB_API_KEY": "k"}) == "disabled"
    assert wandb_mode({"WANDB_MODE": "online"}) == "online"


# --- run ids: one per output folder, kept for resumes ---------------------------------------

def test_run_ids_differ_across_folders_and_persist(tmp_path):
    a, b = tmp_path / "study_a" / "runs" / "x", tmp_path / "study_b" / "runs" / "x"
    first = wandb_run_id(str(a), "code_w4_D307k")
    assert first.startswith("code_w4_D307k-") and len(first) == len("code_w4_D307k-") + 8
    assert wandb_run_id(str(a), "code_w4_D307k") == first  # a resume reuses it
    assert wandb_run_id(str(b), "code_w4_D307k") != first  # another study's run of that name
    assert (a / "wandb" / "mmlaws_run_id").read_text().strip() == first
    odd = wandb_run_id(str(tmp_path / "odd"), "a/b c:d")
    assert set(odd) <= set("abcdefghijklmnopqrstuvwxyz0123456789_.-"), odd


def test_study_groups_are_distinct_per_folder(tmp_path):
    one, two = tmp_path / "1" / "quickstart", tmp_path / "2" / "quickstart"
    assert wandb_group(one) == wandb_group(str(one))
    assert wandb_group(one).startswith("quickstart-") and wandb_group(one) != wandb_group(two)


def test_offline_runs_of_two_studies_stay_apart_and_resume(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    tracking = Tracking(project="p", group="g", tags=("t1", "t2"), tensorboard=False)
    ids = []
    for folder in (tmp_path / "a", tmp_path / "b", tmp_path / "a"):
        log = RunLog(str(folder), HEADER, tracking=tracking)
        run = log.wandb
        assert (run.project, run.group, tuple(run.tags), run.name) == (
            "p", "g", ("t1", "t2"), HEADER["run_id"])
        log.write({"kind": "step", "step": 1, "loss": 2.0, "loss_per_dataset": {"code": 2.0}})
        log.close()
        ids.append(run.id)
    wandb.teardown()  # stop wandb's service now, not while a later test runs
    assert ids[0] != ids[1] and ids[2] == ids[0]
    runs = sorted(p.name for p in (tmp_path / "a" / "wandb").iterdir()
                  if p.name.startswith("offline-run-"))
    assert len(runs) == 2 and all(r.endswith(ids[0]) for r in runs)


def test_study_run_config_binds_tracking(repo_root):
    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings(
            [str(repo_root / "src/mmlaws/study/run.gin")],
            ["WANDB_GROUP='quickstart-abc123'", "runlog.Tracking.entity='team'"],
            finalize_config=False)
        tracking = gin.get_configurable(runlog.Tracking)()
    finally:
        gin.clear_config()
    assert tracking == Tracking(wandb=True, group="quickstart-abc123", entity="team")


# --- TensorBoard event files -------------------------------------------------------------------

def _event_class():
    """``tensorflow.Event`` (the fields written) built with protobuf from its .proto fields, as
    an independent decoder."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(name="mmlaws_test_event.proto", package="t",
                                           syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto
    value = f.message_type.add(name="Value")
    value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
    summary = f.message_type.add(name="Summary")
    summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, type_name=".t.Value",
                      label=F.LABEL_REPEATED)
    event = f.message_type.add(name="Event")
    event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, type_name=".t.Summary",
                    label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("t.Event"))


def _read_events(path):
    """Every record of a TFRecord file, checksums verified, decoded as Events."""
    Event, data, out, i = _event_class(), open(path, "rb").read(), [], 0
    while i < len(data):
        head = data[i:i + 8]
        (n,) = struct.unpack("<Q", head)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == tensorboard.masked_crc32c(head)
        body = data[i + 12:i + 12 + n]
        assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == \
            tensorboard.masked_crc32c(body)
        out.append(Event.FromString(body))
        i += 16 + n
    return out


def test_crc32c_check_values():
    # The standard check value of CRC-32C, and RFC 3720 B.4's 32 zero bytes.
    assert tensorboard.crc32c(b"123456789") == 0xE3069283
    assert tensorboard.crc32c(bytes(32)) == 0x8A9136AA


def test_event_file_holds_the_logged_scalars(tmp_path):
    log = RunLog(str(tmp_path), HEADER, tracking=Tracking(wandb=False))
    log.write({"kind": "step", "step": 1, "tokens": 1024.0, "loss": 3.5,
               "loss_per_dataset": {"code": 3.5}, "grad_norm": 0.25, "skipped": False})
    log.write({"kind": "event", "step": 2, "type": "grad_spike", "grad_norm": 9.0})
    log.write({"kind": "final", "step": 2**33, "loss": float("nan"),
               "loss_per_dataset": {"code": 2.0}})
    log.close()
    files = os.listdir(tmp_path / "tensorboard")
    assert len(files) == 1 and "tfevents" in files[0]
    events = _read_events(tmp_path / "tensorboard" / files[0])
    assert events[0].file_version == "brain.Event:2"
    got = [(e.step, {v.tag: v.simple_value for v in e.summary.value}) for e in events[1:]]
    assert got[0] == (1, {"tokens": 1024.0, "loss": 3.5, "loss_per_dataset/code": 3.5,
                          "grad_norm": 0.25})
    assert got[1] == (2, {"event/grad_spike": 1.0})
    step, final = got[2]
    assert step == 2**33 and final["final/loss_per_dataset/code"] == 2.0
    assert np.isnan(final["final/loss"])
    assert all(e.wall_time > 1e9 for e in events)
