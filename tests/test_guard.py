"""The divergence guard (occ.train.guard): runaway finite losses and weights stop a run, naming the step and the
suspect setting and keeping the last checkpoint that passed; the committed runs stay far inside its bounds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch

import occ.config
import occ.train.gan_step as gan_step
import occ.train.gan_train as gan_train
from occ.checkpoint import load_checkpoint
from occ.config import load_params
from occ.errors import ConfigError, TrainingDivergedError
from occ.train.step_loop import StepLoop, check_finite

from test_gan_train import MODEL, N_CLASSES, TRAIN as TINY, data  # noqa: F401 (data: the tiny training set fixture)

ROOT = Path(__file__).resolve().parents[1]
TRAIN = dataclasses.replace(TINY, ckpt_every=1)


def test_bounds_catch_finite_runaways_and_non_finite_values():
    from occ.train.guard import (LOSS_BOUND, WEIGHT_BOUND, culprit, largest_magnitude, largest_weight,
                                 loss_in_bounds, weights_in_bounds)

    assert loss_in_bounds(torch.tensor(-LOSS_BOUND)) and not loss_in_bounds(torch.tensor(LOSS_BOUND * 1.01))
    assert not loss_in_bounds(torch.tensor(float("nan"))) and not loss_in_bounds(torch.tensor(float("-inf")))
    net = torch.nn.Linear(2, 2)
    assert weights_in_bounds(net.parameters())
    with torch.no_grad():
        net.bias[1] = -2 * WEIGHT_BOUND
    assert not weights_in_bounds(net.parameters())
    assert largest_weight({"G": None, "D": net}) == ("D", "bias", 2 * WEIGHT_BOUND)
    with torch.no_grad():
        net.weight[1, 1] = float("nan")
    assert not weights_in_bounds(net.parameters()) and largest_weight({"D": net})[:2] == ("D", "weight")
    assert largest_magnitude([torch.tensor([1.0, -3.0]), torch.zeros(0), torch.tensor([2.0])]) == 3.0
    assert culprit({"a": torch.tensor(3.0), "b": torch.tensor(-1e30)}) == "b"
    assert culprit({"a": torch.tensor(float("nan")), "b": torch.tensor(-1e30)}) == "a"


def test_a_finite_loss_past_the_bound_names_the_suspect_setting():
    with pytest.raises(TrainingDivergedError) as info:
        big = torch.tensor(1e30, dtype=torch.float64)
        check_finite(big, what="training diverged at step 3: the loss L", parts={"p": big},
                     advice="Lower the rate.", kept="Step 2 was kept.", suspect=lambda: "Suspect setting: x.")
    assert str(info.value) == ("training diverged at step 3: the loss L is 1e+30 (p=1e+30), past 10000, which no "
                               "healthy run reaches. Suspect setting: x. Step 2 was kept. Lower the rate.")


def test_step_loop_watches_weights_every_step(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    net = torch.nn.Linear(2, 2)
    rows = []
    with pytest.raises(TrainingDivergedError) as info:
        with StepLoop(start=0, steps=5, log=None, progress=False, desc="t", ckpt_every=2, checkpoint=ckpt,
                      advice="Lower it.", suspects={"D": "train.lr_d"}, watch={"G": None, "D": net}) as loop:
            for step in loop:
                if step == 3:
                    with torch.no_grad():
                        net.weight[1, 0] = 5e19
                loop.record(row := {"step": step})
                rows.append(row)
                if loop.checkpoint_due:
                    loop.saved()
    assert [r["step"] for r in rows] == [1, 2]  # the step that ran away is not recorded
    assert str(info.value) == ("training diverged at step 3: D weight 'weight' is 5e+19, past 1000, which no healthy "
                               "run reaches. Suspect setting: train.lr_d (D ran away). The last good checkpoint "
                               f"{ckpt} (step 2) was kept. Lower it.")


def test_a_runaway_loss_stops_training_and_keeps_the_last_checkpoint(data, tmp_path, monkeypatch):
    real = gan_step.contrastive_terms  # the G and D steps' one contrastive call
    calls = {"n": 0}

    def runaway(*args, **kwargs):  # D's term of step 2 grows past the bound, finite
        calls["n"] += 1
        out = real(*args, **kwargs)
        return out._replace(loss=out.loss * 1e30) if calls["n"] == 3 else out

    monkeypatch.setattr(gan_step, "contrastive_terms", runaway)
    with pytest.raises(TrainingDivergedError) as info:
        gan_train.train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=tmp_path, seed=3,
                            progress=False)
    message = str(info.value)
    assert message.startswith("training diverged at step 2: the discriminator loss L_D is ")
    assert "past 10000, which no healthy run reaches" in message
    assert "Suspect setting: train.contrastive_weight, train.tau_d or train.tau_c (d_contrastive ran away)" in message
    assert f"The last good checkpoint {tmp_path / 'checkpoint.pt'} (step 1) was kept" in message
    assert load_checkpoint(tmp_path / "checkpoint.pt", kind="gan")["step"] == 1
    assert pd.read_csv(tmp_path / "log.csv")["step"].tolist() == [1]


def test_runaway_weights_stop_training_and_keep_the_last_checkpoint(data, tmp_path, monkeypatch):
    real = gan_train.ema_update

    def runaway(g_ema, g, *, decay, step):  # G's weights of step 2 grow past the bound, finite
        if step == 2:
            with torch.no_grad():
                next(g.parameters()).mul_(1e20)
        real(g_ema, g, decay=decay, step=step)

    monkeypatch.setattr(gan_train, "ema_update", runaway)
    with pytest.raises(TrainingDivergedError,
                       match=r"^training diverged at step 2: G weight '[^']+' is [0-9.e+]+, past 1000, which no healthy "
                             r"run reaches\. Suspect setting: train\.lr_g \(G ran away\)\. The last good checkpoint "
                             r".*checkpoint\.pt \(step 1\) was kept\."):
        gan_train.train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=tmp_path, seed=3,
                            progress=False)
    payload = load_checkpoint(tmp_path / "checkpoint.pt", kind="gan")
    assert payload["step"] == 1
    assert all(v.abs().max() < 1e3 for part in ("g", "d", "g_ema") for v in payload[part].values()
               if v.is_floating_point())


@pytest.mark.parametrize("setting,suspect", [
    ({"tau_c": 1e-30, "tau_d": 1e-30}, "train.contrastive_weight, train.tau_d or train.tau_c"),
    ({"lr_g": 1e10, "lr_d": 1e10}, "train.lr_d"),
    ({"lr_g": 1e10}, "train.lr_g"),
])
def test_smoke_runs_with_a_tiny_temperature_or_a_huge_learning_rate_stop_within_two_steps(setting, suspect, tmp_path,
                                                                                          monkeypatch):
    """params.yaml refuses these values (occ.config's bounds); with the bounds lifted the guard alone stops them."""
    params = load_params(ROOT / "params.yaml", profile="smoke", variant="o2c")
    train = dataclasses.replace(params.train, steps=20, ckpt_every=1, **setting)
    with pytest.raises(ConfigError, match=r"^train\.(tau_d|tau_c|lr_g|lr_d) = .* is out of range"):
        train.check()
    monkeypatch.setattr(occ.config, "MIN_TEMPERATURE", 0.0)
    monkeypatch.setattr(occ.config, "MAX_LEARNING_RATE", float("inf"))
    gen = torch.Generator().manual_seed(0)
    mels, labels = torch.rand(21, 80, 344, generator=gen) * 2 - 1, torch.arange(21) % 7
    with pytest.raises(TrainingDivergedError, match=r"^training diverged at step [12]: ") as info:
        gan_train.train_gan(mels, labels, n_classes=7, model=params.model, train=train, out_dir=tmp_path, seed=0,
                            progress=False)
    assert str(info.value).split("Suspect setting: ")[1].split(" (")[0] == suspect
    assert len(pd.read_csv(tmp_path / "log.csv")) <= 1


def test_the_committed_runs_stay_far_inside_the_bounds():
    """The bounds leave a margin of over 300 above every loss the committed runs logged (the guard never fired)."""
    logs = sorted(ROOT.glob("results/train/*/seed*/log.csv"))
    assert len(logs) >= 21
    largest = 0.0
    for path in logs:
        log = pd.read_csv(path)
        weight = 0.0 if (log["d_contrastive"] == 0).all() else 1.0  # the committed variants use contrastive_weight 1
        for adv, con in (("d_adv", "d_contrastive"), ("g_adv", "g_contrastive")):
            largest = max(largest, float((log[adv] + weight * log[con]).abs().max()))
    from occ.train.guard import LOSS_BOUND

    assert 20 < largest and 300 * largest < LOSS_BOUND
    supcon = pd.read_csv(ROOT / "results/supcon/log.csv")
    assert 300 * float(supcon["loss"].abs().max()) < LOSS_BOUND
