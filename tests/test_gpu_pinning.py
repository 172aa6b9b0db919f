"""`params.yaml: gpu` pins a CUDA run to one GPU without being a declared param of any stage, so pinning a GPU in
an experiment reruns nothing that would compute the same thing (`device` stays the declared cpu-vs-cuda switch)."""

from __future__ import annotations

import pytest
import torch
import yaml

from occ.config import load_params, resolve_params
from occ.errors import ConfigError
from test_dvc_files import ROOT, _stages


def _params(device="auto", gpu=None, profile="embedded", **top):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw.update(device=device, gpu=gpu, **top)
    return resolve_params(raw, profile=profile)


def test_gpu_pins_cuda_and_auto_and_leaves_the_cpu_alone(monkeypatch):
    assert _params("cuda", 1).device == "cuda:1" and _params("cuda", 1).gpu == 1
    assert _params("cuda:1", 1).device == "cuda:1"
    assert _params("cpu", 1).device == "cpu"
    assert _params("cuda", 2, profile="paper").device == "cuda:2"
    assert _params("cuda", 2, profile="smoke").device == "cpu"  # the smoke profile's cpu wins
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _params("auto", 1).device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _params("auto", 1).device == "cuda:1"
    assert _params("auto", None).device == "auto"


@pytest.mark.parametrize("gpu", [-1, "1", 1.0, True])
def test_a_bad_gpu_is_an_error_naming_gpu(gpu):
    with pytest.raises(ConfigError, match=r"^gpu = .* must be null or a GPU index.*fix `gpu` in params\.yaml"):
        _params("cuda", gpu)


def test_device_and_gpu_naming_different_gpus_is_an_error():
    with pytest.raises(ConfigError, match=r"device = 'cuda:0' and gpu = 1 name different GPUs"):
        _params("cuda:0", 1)


def test_no_profile_sets_gpu():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profiles"]["paper"]["gpu"] = 1
    with pytest.raises(ConfigError, match=r"profiles\.paper\.gpu: `gpu` says which GPU runs a stage"):
        resolve_params(raw, profile="paper")


def test_no_stage_declares_gpu_so_pinning_reruns_nothing():
    for name, spec in _stages().items():
        spec = spec.get("do", spec)
        assert "gpu" not in [str(p) for p in spec.get("params", [])], f"dvc.yaml stage {name} declares `gpu`"
    assert load_params(ROOT / "params.yaml").gpu is None  # the committed run pins nothing
