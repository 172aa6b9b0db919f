"""The divergence guard (occ.guard): runaway finite losses and weights stop a run, naming the step, the value, the
bound, the suspect settings and what to do about them, and keeping the last checkpoint that passed; a checkpoint past
the bounds is refused on every load; the committed runs stay far inside the bounds."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

import occ.config
import occ.train.gan_step as gan_step
import occ.train.gan_train as gan_train
from occ.checkpoint import load_checkpoint, save_checkpoint
from occ.config import load_params
from occ.errors import CheckpointError, ConfigError, TrainingDivergedError
from occ.guard import (BUFFER_NAMES, HEALTHY_LOSS, HEALTHY_WEIGHT, LOSS_FLOOR, WEIGHT_FLOOR, contrastive_ceiling,
                       gan_loss_bound, gan_weight_bound, remedy, supcon_loss_bound, weight_bound)
from occ.nets.models import load_discriminator, load_generator
from occ.guard import check_loss_bound
from occ.train.step_loop import StepLoop

from test_gan_train import MODEL, N_CLASSES, TRAIN as TINY, data  # noqa: F401 (data: the tiny training set fixture)

ROOT = Path(__file__).resolve().parents[1]
TRAIN = dataclasses.replace(TINY, ckpt_every=1)


def test_bounds_catch_finite_runaways_and_non_finite_values():
    from occ.guard import culprit, largest_magnitude, largest_weight, loss_in_bounds, weights_in_bounds

    LOSS_BOUND, WEIGHT_BOUND = LOSS_FLOOR, WEIGHT_FLOOR
    assert loss_in_bounds(torch.tensor(-LOSS_BOUND)) and not loss_in_bounds(torch.tensor(LOSS_BOUND * 1.01))
    assert loss_in_bounds(torch.tensor(2e3), 2.1e3) and not loss_in_bounds(torch.tensor(2e3), 1.9e3)
    assert not loss_in_bounds(torch.tensor(float("nan"))) and not loss_in_bounds(torch.tensor(float("-inf")))
    net = torch.nn.Linear(2, 2)
    assert weights_in_bounds(net.parameters())
    with torch.no_grad():
        net.bias[1] = -2 * WEIGHT_BOUND
    assert not weights_in_bounds(net.parameters()) and weights_in_bounds(net.parameters(), 2.5 * WEIGHT_BOUND)
    assert largest_weight({"G": None, "D": net}) == ("D", "bias", 2 * WEIGHT_BOUND)
    with torch.no_grad():
        net.weight[1, 1] = float("nan")
    assert not weights_in_bounds(net.parameters()) and largest_weight({"D": net})[:2] == ("D", "weight")
    assert largest_magnitude([torch.tensor([1.0, -3.0]), torch.zeros(0), torch.tensor([2.0])]) == 3.0
    assert culprit({"a": torch.tensor(3.0), "b": torch.tensor(-1e30)}) == "b"
    assert culprit({"a": torch.tensor(float("nan")), "b": torch.tensor(-1e30)}) == "a"


def test_a_finite_loss_past_the_bound_names_the_suspect_setting():
    kw = dict(what="x", advice="a", kept="k", bound=LOSS_FLOOR)
    check_loss_bound(torch.tensor(float("nan")), **kw)  # not finite: check_loss_finite's to say
    check_loss_bound(torch.tensor(-LOSS_FLOOR), **kw)
    with pytest.raises(TrainingDivergedError) as info:
        big = torch.tensor(1e30, dtype=torch.float64)
        check_loss_bound(big, bound=LOSS_FLOOR, what="training diverged at step 3: the loss L", parts={"p": big},
                         advice="Lower the rate.", kept="Step 2 was kept.", suspect=lambda: "Suspect setting: x.")
    assert str(info.value) == ("training diverged at step 3: the loss L is 1e+30 (p=1e+30), past 500, the divergence "
                               "guard's bound for this run, which no healthy run reaches. Suspect setting: x. Step 2 "
                               "was kept. Lower the rate.")


def test_step_loop_watches_weights_every_step(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    net = torch.nn.Linear(2, 2)
    rows = []
    with pytest.raises(TrainingDivergedError) as info:
        with StepLoop(start=0, steps=5, log=None, progress=False, desc="t", ckpt_every=2, checkpoint=ckpt,
                      advice="To retry, {remedy}.", suspects={"D": "train.lr_d", "G": "train.lr_g"},
                      watch={"G": None, "D": net}) as loop:
            for step in loop:
                if step == 3:
                    with torch.no_grad():
                        net.weight[1, 0] = 5e19
                loop.record(row := {"step": step})
                rows.append(row)
                if loop.checkpoint_due:
                    loop.saved()
    assert [r["step"] for r in rows] == [1, 2]  # the step that ran away is not recorded
    assert str(info.value) == ("training diverged at step 3: D weight 'weight' is 5e+19, past 50.005, the divergence "
                               "guard's bound for this run, which no healthy run reaches. Suspect setting: train.lr_d "
                               f"(D ran away). The last good checkpoint {ckpt} (step 2) was kept. To retry, lower "
                               "train.lr_d.")  # the bound of a 5-step run; the advice: the suspect of D alone


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
    assert f"past {gan_loss_bound(TRAIN):.4g}, the divergence guard's bound for this run, which no healthy" in message
    assert "Suspect setting: train.contrastive_weight, train.tau_d or train.tau_c (d_contrastive ran away)" in message
    # the advice names every setting that can cause it, the contrastive weight included
    assert "To retry, lower train.contrastive_weight or raise train.tau_d / train.tau_c and delete " in message
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
                       match=r"^training diverged at step 2: G weight '[^']+' is [0-9.e+]+, past 50\.004, the "
                             r"divergence guard's bound for this run, which no healthy run reaches\. Suspect setting: "
                             r"train\.lr_g \(G ran away\)\. The last good checkpoint .*checkpoint\.pt \(step 1\) was "
                             r"kept\. To retry, lower train\.lr_g and delete "):
        gan_train.train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=TRAIN, out_dir=tmp_path, seed=3,
                            progress=False)
    payload = load_checkpoint(tmp_path / "checkpoint.pt", kind="gan")
    assert payload["step"] == 1
    assert all(v.abs().max() < gan_weight_bound(TRAIN) for part in ("g", "d", "g_ema")
               for v in payload[part].values() if v.is_floating_point())


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


# --- the bounds fit a healthy run -------------------------------------------------------------------------------------


def _committed_logs() -> list[tuple[str, pd.DataFrame]]:
    logs = sorted(ROOT.glob("results/train/*/seed*/log.csv"))
    assert len(logs) >= 21
    return [(path.parts[-3], pd.read_csv(path)) for path in logs]


def test_the_bounds_stop_no_committed_run_and_leave_a_margin():
    """Every step of every committed run (its own variant's bound) lies inside the guard's loss bound, with a margin of
    over 10 (at f81c062: the smallest bound, 500, over 15 times the largest loss, 31.1; the largest adversarial term,
    19.2, 26 times below the floor); the SupCon log likewise."""
    largest, tightest = 0.0, float("inf")
    for variant, log in _committed_logs():
        train = load_params(ROOT / "params.yaml", variant=variant).train
        bound = gan_loss_bound(train)
        for adv, con in (("d_adv", "d_contrastive"), ("g_adv", "g_contrastive")):
            loss = (log[adv] + train.contrastive_weight * log[con]).abs()
            assert (loss <= bound).all(), f"{variant}: the guard would stop a committed run ({loss.max()} > {bound})"
            assert (log[con] <= contrastive_ceiling(train.tau_d, train.tau_c, train.batch_size)).all()
            largest, tightest = max(largest, float(loss.max())), min(tightest, bound)
        assert len(log) == train.steps  # every committed run finished: the guard never fired
    assert 10 < largest and 10 * largest < tightest and HEALTHY_LOSS < tightest / 15
    assert max(float(log[c].abs().max()) for _, log in _committed_logs() for c in ("d_adv", "g_adv")) * 10 < LOSS_FLOOR
    supcon = pd.read_csv(ROOT / "results/supcon/log.csv")
    cfg = load_params(ROOT / "params.yaml").supcon
    assert 100 * float(supcon["loss"].abs().max()) < supcon_loss_bound(cfg)


def test_healthy_weights_lie_far_inside_the_weight_bound_of_every_profile():
    """The largest weight of a healthy run is a class embedding drawn from N(0, 1) at the start: measured here for the
    networks of every preset (G, D and f); the bound lies over 11 times above it and grows with a run's steps, so that
    the paper profile's 100,000 steps at its learning rate (1e-4: at most about 10 added) stay over 10 times inside."""
    from occ.guard import largest_weight
    from occ.nets.models import build_discriminator, build_encoder, build_generator
    from occ.seeding import seed_everything

    largest = 0.0
    for profile, seeds in (("embedded", range(3)), ("smoke", range(1)), ("paper", range(1))):
        model = load_params(ROOT / "params.yaml", profile=profile).model
        for seed in seeds:
            seed_everything(seed)
            nets = {"G": build_generator(model, n_classes=7), "f": build_encoder(model, n_classes=7),
                    "D": build_discriminator(model, n_classes=7, projection=True)}
            largest = max(largest, largest_weight(nets)[2])
    assert 3 < largest <= HEALTHY_WEIGHT and 11 * HEALTHY_WEIGHT < weight_bound(0) == WEIGHT_FLOOR
    for profile in ("embedded", "smoke", "paper"):
        train = load_params(ROOT / "params.yaml", profile=profile).train
        drift = max(train.lr_g, train.lr_d) * train.steps  # Adam: about lr per step, at most
        assert 10 * (HEALTHY_WEIGHT + drift) < gan_weight_bound(train)
    paper = load_params(ROOT / "params.yaml", profile="paper").train
    assert gan_weight_bound(paper) == pytest.approx(150.0)
    assert gan_weight_bound(dataclasses.replace(paper, steps=10 * paper.steps)) > 10 * gan_weight_bound(paper) - 500


def test_the_guard_reads_parameters_only_and_knows_every_buffer():
    """On load the guard reads a state dict: the entries it skips (BUFFER_NAMES) are exactly the buffers of G, D and f
    (BatchNorm's statistics, spectral norm's vectors), never a parameter."""
    from occ.nets.models import build_discriminator, build_encoder, build_generator

    model = load_params(ROOT / "params.yaml", profile="smoke").model
    for net in (build_generator(model, n_classes=7), build_discriminator(model, n_classes=7, projection=True),
                build_encoder(model, n_classes=7)):
        params = {name for name, _ in net.named_parameters()}
        buffers = set(net.state_dict()) - params
        assert buffers and all(name.rsplit(".", 1)[-1] in BUFFER_NAMES for name in buffers)
        assert not [name for name in params if name.rsplit(".", 1)[-1] in BUFFER_NAMES]


def test_remedy_names_every_suspect_setting_and_which_way_to_move_it():
    assert remedy(["train.lr_d"]) == "lower train.lr_d"
    assert remedy(["train.contrastive_weight, train.tau_d or train.tau_c"]) == (
        "lower train.contrastive_weight or raise train.tau_d / train.tau_c")
    assert remedy(["supcon.lr or supcon.temperature", "supcon.lr"]) == "lower supcon.lr or raise supcon.temperature"


def test_a_runaway_inside_the_configurations_limits_stops_and_keeps_the_last_file_inside_the_bounds(tmp_path):
    """Before: a smoke o2c run at the largest learning rate and the smallest temperature params.yaml
    accepts went to its end (weights of 760, losses of 2,030); the guard now stops it in its first steps, naming the
    value and the bound, and the file it keeps (here step0.pt) is inside the bounds."""
    params = load_params(ROOT / "params.yaml", profile="smoke", variant="o2c")
    train = dataclasses.replace(params.train, steps=3, ckpt_every=1, lr_g=occ.config.MAX_LEARNING_RATE,
                                lr_d=occ.config.MAX_LEARNING_RATE, tau_d=occ.config.MIN_TEMPERATURE,
                                tau_c=occ.config.MIN_TEMPERATURE)
    train.check()  # inside the configuration's limits
    gen = torch.Generator().manual_seed(0)
    mels, labels = torch.rand(21, 80, 344, generator=gen) * 2 - 1, torch.arange(21) % 7
    with pytest.raises(TrainingDivergedError) as info:
        gan_train.train_gan(mels, labels, n_classes=7, model=params.model, train=train, out_dir=tmp_path, seed=0,
                            progress=False)
    message = str(info.value)
    assert message.startswith("training diverged at step 1: ")
    assert f"past {gan_loss_bound(train):.4g}, the divergence guard's bound for this run" in message
    assert "Suspect setting: train.lr_d" in message and "To retry, lower train.lr_d and delete" in message
    assert f"No checkpoint had been written yet ({tmp_path / 'step0.pt'} holds step 0)" in message
    assert not (tmp_path / "checkpoint.pt").exists()
    load_generator(tmp_path / "step0.pt", ema=False)  # the file kept passes the bounds on load


@pytest.fixture()
def oversized(data, tmp_path):  # noqa: F811 (data: the fixture imported above)
    """A finished tiny run, and a copy of its checkpoint with one weight of ``part`` set to ``value``."""
    run = tmp_path / "run"
    gan_train.train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=dataclasses.replace(TINY, steps=2), out_dir=run,
                        seed=3, progress=False)

    def make(part: str, value: float, *, into: Path | None = None) -> Path:
        payload = load_checkpoint(run / "checkpoint.pt")
        name = next(k for k, v in payload[part].items() if v.is_floating_point()
                    and k.rsplit(".", 1)[-1] not in BUFFER_NAMES)
        payload[part][name].view(-1)[0] = value
        target = into or tmp_path / f"{part}_{value:g}.pt"
        save_checkpoint(target, payload)
        return target

    make.run = run
    return make


@pytest.mark.parametrize("part,label,load", [
    ("g", "G", lambda path: load_generator(path, ema=False)),
    ("g_ema", "EMA G", lambda path: load_generator(path, ema=True)),
    ("d", "D", load_discriminator),
])
def test_a_checkpoint_with_a_weight_past_the_bound_is_refused_on_every_load(oversized, part, label, load):
    """Before: a G weight of 5e3 loaded through load_generator(ema=False) without a word."""
    path = oversized(part, 5e3)
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {label} weight '")
    assert "is 5000, past the divergence guard's bound 50.002 for its run (50 + 0.001 per step of 2 steps" in message
    assert "delete it with its run folder" in message and "good" not in message
    load(oversized(part, 40.0))  # inside the bound: loads


def test_resume_refuses_a_checkpoint_past_the_bound_and_never_calls_it_good(oversized, data):  # noqa: F811
    run = oversized.run
    oversized("g", 5e3, into=run / "checkpoint.pt")
    with pytest.raises(CheckpointError) as info:
        gan_train.train_gan(*data, n_classes=N_CLASSES, model=MODEL, train=dataclasses.replace(TINY, steps=4),
                            out_dir=run, seed=3, progress=False)
    message = str(info.value)
    assert message.startswith(f"{run / 'checkpoint.pt'}: G weight '") and "past the divergence guard's bound" in message
    assert "good" not in message and "was kept" not in message
    assert pd.read_csv(run / "log.csv")["step"].tolist() == [1, 2]  # nothing trained on it


def test_the_guard_computes_its_bounds_within_the_configurations_limits():
    """The loss bound reads the temperatures and the contrastive weight within the limits params.yaml accepts (so that
    a value past them, set in code, is still stopped), and those limits are the configuration's."""
    from occ.guard import LARGEST_CONTRASTIVE_WEIGHT, SMALLEST_TEMPERATURE

    assert SMALLEST_TEMPERATURE == occ.config.MIN_TEMPERATURE
    assert LARGEST_CONTRASTIVE_WEIGHT == occ.config.MAX_CONTRASTIVE_WEIGHT
    train = load_params(ROOT / "params.yaml").train
    tiny = dataclasses.replace(train, tau_d=1e-30, tau_c=1e-30)
    at_limit = dataclasses.replace(train, tau_d=1e-3, tau_c=1e-3)
    assert gan_loss_bound(tiny) == gan_loss_bound(at_limit) == pytest.approx(500 + 2000 + math.log(32))
    assert gan_loss_bound(dataclasses.replace(train, contrastive_weight=1e6)) == gan_loss_bound(
        dataclasses.replace(train, contrastive_weight=10.0))
    assert gan_loss_bound(dataclasses.replace(train, loss="none")) == LOSS_FLOOR


def test_a_huge_contrastive_weight_is_refused_at_load():
    """Before: train.contrastive_weight = 1e6 passed params.yaml."""
    train = load_params(ROOT / "params.yaml").train
    with pytest.raises(ConfigError, match=r"^train\.contrastive_weight = 1000000\.0 is out of range: use a value in "
                                          r"\[0, 10\]"):
        dataclasses.replace(train, contrastive_weight=1e6).check()
