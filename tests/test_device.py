"""`params.yaml: device` (auto, cpu, cuda, cuda:N): validation, the error messages, and GPU pinning with a mocked CUDA."""

import copy
from pathlib import Path

import pytest
import torch
import yaml

from occ.config import resolve_params
from occ.errors import ConfigError
from occ.device import resolve_device, use_threads

ROOT = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def _params(device, profile="embedded"):
    raw = copy.deepcopy(RAW)
    raw["device"] = device
    return resolve_params(raw, profile=profile)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:1", "cuda:12"])
def test_accepted_devices(device):
    assert _params(device).device == device


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:-1", "cuda:01", "cuda:1:2", "CUDA", " cpu", "cuda:x", "mps"])
def test_other_devices_are_config_errors_naming_device(device):
    with pytest.raises(ConfigError, match=r"^device = .*cuda:N.*fix `device` in params\.yaml"):
        _params(device)


def test_params_and_the_resolver_check_devices_alike():
    """One pattern, one message: what params.yaml refuses, the resolver refuses with the same words, and back."""
    import occ.config
    import occ.device

    assert not hasattr(occ.config, "DEVICE")  # the pattern lives in occ.device alone
    for device in ("gpu", "cuda:01", "mps"):
        with pytest.raises(ConfigError) as in_params:
            _params(device)
        with pytest.raises(ConfigError) as resolved:
            resolve_device(device)
        assert str(in_params.value) == str(resolved.value)
    assert all(occ.device.DEVICE_PATTERN.fullmatch(d) for d in ("auto", "cpu", "cuda", "cuda:3"))


def test_a_profile_cuda_keeps_the_top_level_gpu_index():
    assert _params("cuda:1", profile="paper").device == "cuda:1"  # the profile asks for a GPU, the top level says which
    assert _params("auto", profile="paper").device == "cuda"
    assert _params("cuda:1", profile="smoke").device == "cpu"  # a profile's cpu still wins


def test_cpu_and_auto_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match=r"no CUDA device is available; set `device: auto` or `device: cpu`"):
            resolve_device(name)
    with pytest.raises(ConfigError, match=r"^device = 'tpu' is not one of .*fix `device`"):
        resolve_device("tpu")


def test_cuda_n_pins_the_gpu(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert resolve_device("cuda:1") == torch.device("cuda", 1) and chosen == [1]
    assert resolve_device(torch.device("cuda", 0)) == torch.device("cuda", 0) and chosen == [1, 0]
    assert resolve_device("cuda") == torch.device("cuda") and chosen == [1, 0]
    with pytest.raises(ConfigError, match=r"device = 'cuda:2' but this machine has 2 CUDA device\(s\) \(cuda:0 to "
                                          r"cuda:1\); set `device`"):
        resolve_device("cuda:2")
    assert chosen == [1, 0]


def test_use_threads_sets_torchs_thread_count_and_refuses_zero():
    before = torch.get_num_threads()
    try:
        assert use_threads(1) == 1 and torch.get_num_threads() == 1
        assert use_threads(2) == 2 and torch.get_num_threads() == 2
        with pytest.raises(ConfigError, match=r"threads = 0 must be at least 1; fix the `threads` key in params\.yaml"):
            use_threads(0)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("section", ["supcon", "train", "eval"])
def test_every_stage_section_declares_its_threads(section):
    raw = copy.deepcopy(RAW)
    assert raw[section]["threads"] == 1  # the embedded profile: one thread per stage, cores / 1 stages at once
    raw[section]["threads"] = 0
    with pytest.raises(ConfigError, match=rf"{section}\.threads"):
        resolve_params(raw, profile="embedded")
