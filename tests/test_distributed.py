"""Data-parallel training (occ.train.distributed) under torchrun with gloo on the CPU, against one process.

Two processes with 8 rows each must compute what one process computes with 16, up to float32 rounding: the
batch is split into other shapes (other kernels, other summation orders) and the gradients are summed over
processes. The tolerance is measured, not guessed: the same one-process step run with 2 threads instead of 1
changes only the rounding, and the two-process gradients may differ from the one-process ones by at most
3 times that much (relative to each tensor's largest entry, the largest such change over the network; plus
1e-4). In float32 that rounding is not small for these
smoke-sized networks: about 1e-4 of the largest entry for D, 4e-3 for G and 6e-2 for the SupCon encoder (the
temperature 0.1 divides the embeddings' rounding by 0.1). Losses agree to 1e-4 relative. Adam's first update
is ``lr * g / (|g| + eps)``, about ``lr * sign(g)``: where a gradient is zero up to rounding (the conv biases in
front of a BatchNorm) its sign is noise, so those weights may differ by up to ``2 * lr``; where the gradient
stands clear of its rounding error the weights agree to 1e-6. The machinery itself (gather and global-batch
BatchNorm) is checked in float64 to 1e-10. A loss that is not finite on one process stops every process in the
same step, the last good checkpoint kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from occ.nets.models import build_encoder, load_generator

sys.path.insert(0, str(Path(__file__).parent))
from ddp_train import MODEL, machinery_loss, machinery_reference, run, smoke_setup  # noqa: E402

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent


def _torchrun(*jobs: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "ddp_train.py"), *jobs]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    torch.set_num_threads(1)
    # The frozen encoder f of the SupCon GAN losses, trained in one process.
    from occ.train.supcon_train import finetune_classifier, pretrain_supcon

    mels, labels, cfg = smoke_setup("supcon", 2)
    pretrain_supcon(mels, labels, n_classes=3, model=MODEL, cfg=cfg, out_dir=root / "f", seed=1, progress=False)
    finetune_classifier(mels, labels, n_classes=3, model=MODEL, cfg=cfg, out_dir=root / "f", seed=1, progress=False)
    enc = str(root / "f" / "encoder.pt")
    for name, kind, steps, stop, encoder in [("o2c", "o2c", 1, None, None), ("ocsupcon", "ocsupcon", 1, None, enc),
                                             ("ocsupcon_paired", "ocsupcon_paired", 1, None, enc),
                                             ("supcon", "supcon", 1, None, None), ("o2c4", "o2c", 4, None, None),
                                             ("one_then_ddp", "o2c", 4, 2, None)]:
        run(kind, str(root / "one" / name), steps, stop, encoder)
    torch.set_num_threads(2)  # the same steps with other rounding: the noise floor of the comparison
    for name, kind, encoder in [("o2c", "o2c", None), ("ocsupcon", "ocsupcon", enc),
                                ("ocsupcon_paired", "ocsupcon_paired", enc), ("supcon", "supcon", None)]:
        run(kind, str(root / "threads" / name), 1, None, encoder)
    torch.set_num_threads(1)
    d = root / "ddp"
    _torchrun(f"machinery,{root / 'machinery.json'}", f"o2c,{d / 'o2c'},1", f"ocsupcon,{d / 'ocsupcon'},1,,{enc}",
              f"ocsupcon_paired,{d / 'ocsupcon_paired'},1,,{enc}",
              f"supcon,{d / 'supcon'},1", f"o2c,{d / 'killed'},4,2", f"o2c,{d / 'o2c4'},4",
              f"o2c,{d / 'ddp_then_one'},4,2", f"diverge,{d / 'diverge'},3")
    _torchrun(f"o2c,{d / 'killed'},4", f"o2c,{root / 'one' / 'one_then_ddp'},4")  # new processes: resume
    run("o2c", str(d / "ddp_then_one"), 4)
    return root


def _ckpt(folder: Path) -> dict:
    name = "supcon.pt" if folder.name == "supcon" else "checkpoint.pt"
    return torch.load(folder / name, weights_only=False)


def _log(folder: Path) -> pd.DataFrame:
    name = "supcon_log.csv" if folder.name == "supcon" else "log.csv"
    return pd.read_csv(folder / name).drop(columns="seconds")


def test_a_loss_that_diverges_on_one_process_stops_every_process(runs):
    d = runs / "ddp"
    here, other = (d / "diverge.1").read_text(), (d / "diverge.0").read_text()
    kept = f"The last good checkpoint {d / 'diverge' / 'checkpoint.pt'} (step 2) was kept."
    assert here.startswith("training diverged at step 3: the discriminator loss L_D is nan (d_adv=") and kept in here
    assert other.startswith("training diverged at step 3: the discriminator loss L_D is not finite or past ")
    assert f" on another process. {kept} To retry, lower train.lr_d" in other  # every setting it may come from
    assert torch.load(d / "diverge" / "checkpoint.pt", weights_only=False)["step"] == 2  # the last good one, kept
    assert pd.read_csv(d / "diverge" / "log.csv")["step"].tolist() == [1, 2]


def test_gather_and_global_batchnorm_match_one_process_in_float64(runs):
    got = json.loads((runs / "machinery.json").read_text())
    x, net = machinery_reference()
    loss = machinery_loss(net, x)
    loss.backward()
    assert got["loss"] == pytest.approx(loss.item(), rel=1e-10)
    for name, p in net.named_parameters():
        assert torch.allclose(torch.tensor(got["grads"][name], dtype=torch.float64), p.grad, rtol=1e-10, atol=1e-12)
    assert torch.allclose(torch.tensor(got["running_mean"], dtype=torch.float64), net[1].running_mean, rtol=1e-10)
    assert torch.allclose(torch.tensor(got["running_var"], dtype=torch.float64), net[1].running_var, rtol=1e-10)


@pytest.mark.parametrize("name", ["o2c", "ocsupcon", "ocsupcon_paired", "supcon"])
def test_one_step_on_two_processes_equals_one_process_with_the_whole_batch(runs, name):
    one, ddp, other = _ckpt(runs / "one" / name), _ckpt(runs / "ddp" / name), _ckpt(runs / "threads" / name)
    pd.testing.assert_frame_equal(_log(runs / "ddp" / name), _log(runs / "one" / name), rtol=1e-4, atol=1e-6)
    assert torch.equal(one["rng"]["generators"]["sampler"], ddp["rng"]["generators"]["sampler"])  # one stream
    pairs = [("encoder", "optim", one["train"]["lr"])] if name == "supcon" else \
        [("g", "g_optim", one["train"]["lr_g"]), ("d", "d_optim", one["train"]["lr_d"])]
    for net, optim, lr in pairs:
        assert list(one[net]) == list(ddp[net])  # the same keys: no DDP prefix in the checkpoint
        beta1 = one[optim]["param_groups"][0]["betas"][0]
        # Adam's state is indexed in parameter order; parameters without a gradient (the encoder's unused
        # classifier) have none.
        order = [(i, key) for i, key in enumerate(_param_names(name, net)) if i in one[optim]["state"]]
        params = [key for _, key in order]
        grads = {src: [ckpt[optim]["state"][i]["exp_avg"] / (1 - beta1) for i, _ in order]
                 for src, ckpt in (("one", one), ("ddp", ddp), ("other", other))}  # Adam's first moment: g
        # The network's rounding noise: the largest change of a gradient, relative to its tensor's largest entry,
        # when only the thread count changes.
        noise = max(float((a - b).abs().max() / a.abs().max().clamp(min=1e-12))
                    for a, b in zip(grads["one"], grads["other"]))
        for key, g_one, g_ddp in zip(params, grads["one"], grads["ddp"]):
            tol = (3 * noise + 1e-4) * g_one.abs().max() + 1e-7
            assert (g_one - g_ddp).abs().max() <= tol, (net, key)
            dw = (one[net][key] - ddp[net][key]).abs()
            assert dw.max() <= 2 * lr + 1e-6, (net, key)
            clear = g_one.abs() > 2 * tol  # the gradient's sign is not rounding noise
            assert not clear.any() or dw[clear].max() <= 1e-6, (net, key)


def _param_names(name: str, net: str) -> list[str]:
    from occ.nets.models import build_discriminator, build_generator

    build = {"g": build_generator, "d": build_discriminator, "encoder": build_encoder}[net]
    return [n for n, _ in build(MODEL, n_classes=3).named_parameters()]


def test_a_killed_parallel_run_resumes_exactly(runs):
    killed, full = _ckpt(runs / "ddp" / "killed"), _ckpt(runs / "ddp" / "o2c4")
    assert killed["step"] == full["step"] == 4
    for part in ("g", "d", "g_ema"):
        assert all(torch.equal(killed[part][k], full[part][k]) for k in full[part]), part
    pd.testing.assert_frame_equal(_log(runs / "ddp" / "killed"), _log(runs / "ddp" / "o2c4"), check_exact=True)


@pytest.mark.parametrize("name", ["one_then_ddp", "ddp_then_one"])
def test_checkpoints_move_between_one_and_two_processes(runs, name):
    folder = runs / ("one" if name == "one_then_ddp" else "ddp") / name
    ckpt = _ckpt(folder)
    assert ckpt["step"] == 4 and _log(folder)["step"].tolist() == [1, 2, 3, 4]
    reference = _log(runs / "one" / "o2c4")
    pd.testing.assert_frame_equal(_log(folder), reference, rtol=1e-2, atol=1e-3)
    g, _ = load_generator(folder / "checkpoint.pt")
    assert g(torch.zeros(2, g.z_dim), torch.tensor([0, 1])).shape == (2, 1, 80, 344)
