"""Benchmark of the networks and losses: one D+G training step, an encoder step, the contrastive loss.

Measures, on the CPU (and on CUDA when available):

* one D+G training step (D step: hinge + O2C contrastive loss on the real batch; G step: hinge +
  O2C on the generated batch; Adam; backward) at batch 16 on 80 x 344, for each width preset of
  ``occ.nets.layers.WIDTHS``; reference path in the same run: the BigGAN layout (``WIDTHS["paper"]``)
  shrunk to the embedded base width, so the ratio shows what the lean layout buys at equal width;
* one SupCon encoder forward + backward (two augmented views of batch 16 = 32 inputs);
* the vectorised ``contrastive_loss`` against a brute-force double loop at batch 64.

Usage::

    python benchmarks/bench_models.py                 # embedded width + reference, encoder, loss
    python benchmarks/bench_models.py --paper         # also the paper width (slow on a CPU)
    python benchmarks/bench_models.py --repeats 5 --threads 2

Wall-clock medians; the load average is printed because other processes on the machine inflate
the numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable

import torch

from occ.nets.discriminator import Discriminator
from occ.nets.encoder import Encoder, augment
from occ.nets.generator import WIDTHS, Generator
from occ.train.losses import contrastive_loss, d_hinge_loss, g_hinge_loss, supcon_loss

N_CLASSES = 7
BATCH = 16


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(
    fn: Callable[[], None], *, repeats: int, warmup: int, device: torch.device
) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``fn``, in milliseconds.

    On a machine shared with other jobs the wall time is inflated; with one thread the process CPU
    time stays close to the wall time of an idle machine.
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        walls.append((time.perf_counter() - t0) * 1000.0)
        cpus.append((time.process_time() - c0) * 1000.0)
    return statistics.median(walls), statistics.median(cpus)


def gan_step_fn(
    g_kwargs: dict, d_kwargs: dict, *, device: torch.device, kind: str = "o2c"
) -> tuple[Callable[[], None], int, int]:
    """One D step and one G step of the hinge + contrastive objective (Eq. 6)."""
    torch.manual_seed(0)
    gen = Generator(n_classes=N_CLASSES, **g_kwargs).to(device)
    disc = Discriminator(n_classes=N_CLASSES, **d_kwargs).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.999))
    x_real = (torch.rand(BATCH, 1, 80, 344) * 2 - 1).to(device)
    y = torch.randint(0, N_CLASSES, (BATCH,)).to(device)
    taus = {"tau_d": 0.1, "tau_c": 0.1}

    def step() -> None:
        with torch.no_grad():
            x_fake = gen(torch.randn(BATCH, gen.z_dim, device=device), y)
        out = disc(torch.cat([x_real, x_fake]), torch.cat([y, y]))
        real_logits, fake_logits = out.logits.split(BATCH)
        loss_d = d_hinge_loss(real_logits, fake_logits) + contrastive_loss(
            out.embedding[:BATCH], y, disc.class_embedding(y), kind=kind, **taus
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        x_fake = gen(torch.randn(BATCH, gen.z_dim, device=device), y)
        out = disc(x_fake, y)
        loss_g = g_hinge_loss(out.logits) + contrastive_loss(
            out.embedding, y, disc.class_embedding(y), kind=kind, **taus
        )
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    n_g = sum(p.numel() for p in gen.parameters())
    n_d = sum(p.numel() for p in disc.parameters())
    return step, n_g, n_d


def encoder_step_fn(enc_kwargs: dict, *, device: torch.device) -> tuple[Callable[[], None], int]:
    """Two augmented views of a batch of 16, SupCon loss, backward, Adam."""
    torch.manual_seed(0)
    enc = Encoder(n_classes=N_CLASSES, **enc_kwargs).to(device)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
    x = torch.rand(BATCH, 1, 80, 344) * 2 - 1
    y = torch.randint(0, N_CLASSES, (BATCH,))
    sampler = torch.Generator().manual_seed(0)

    def step() -> None:
        views = torch.cat([augment(x, generator=sampler), augment(x, generator=sampler)])
        z = enc.embed(views.to(device))
        loss = supcon_loss(torch.stack(z.split(BATCH), dim=1), y.to(device), temperature=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, sum(p.numel() for p in enc.parameters())


def brute_force_o2c(d: torch.Tensor, labels: torch.Tensor, e: torch.Tensor, tau: float) -> float:
    """Eq. (3) with explicit loops over i and k (the reference path of the loss benchmark)."""
    d = torch.nn.functional.normalize(d, dim=1).tolist()
    e = torch.nn.functional.normalize(e, dim=1).tolist()
    n = len(d)
    total = 0.0
    for i in range(n):
        d2c = math.exp(sum(a * b for a, b in zip(d[i], e[i])) / tau)
        den = d2c
        for k in range(n):
            if k != i:
                den += math.exp(sum(a * b for a, b in zip(d[i], d[k])) / tau)
        total += -math.log(d2c / den)
    return total / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--paper", action="store_true", help="also time the paper width")
    parser.add_argument("--cpu-only", action="store_true", help="skip CUDA even if available")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    print(f"torch {torch.__version__}, {args.threads} CPU threads, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}, repeats {args.repeats}")

    embedded_ch = WIDTHS["embedded"]["generator"]["ch"]
    configs = {
        "embedded": (WIDTHS["embedded"]["generator"], WIDTHS["embedded"]["discriminator"]),
        "reference: BigGAN layout at embedded ch": (
            {**WIDTHS["paper"]["generator"], "ch": embedded_ch},
            {**WIDTHS["paper"]["discriminator"], "ch": WIDTHS["embedded"]["discriminator"]["ch"]},
        ),
    }
    if args.paper:
        configs["paper"] = (WIDTHS["paper"]["generator"], WIDTHS["paper"]["discriminator"])

    for device in devices:
        print(f"\n== D+G training step, batch {BATCH}, 80 x 344, {device.type} ==")
        results = {}
        for name, (gk, dk) in configs.items():
            slow = name == "paper" and device.type == "cpu"
            step, n_g, n_d = gan_step_fn(gk, dk, device=device)
            ms, cpu_ms = _time(step, repeats=1 if slow else args.repeats, warmup=1, device=device)
            results[name] = (ms, cpu_ms)
            print(f"{name:42s} {ms:9.1f} ms/step wall {cpu_ms:9.1f} ms CPU   "
                  f"G {n_g:>9,} params   D {n_d:>9,} params")
        ref = results["reference: BigGAN layout at embedded ch"]
        emb = results["embedded"]
        print(f"speed-up of the embedded layout over the BigGAN layout at equal width: "
              f"{ref[0] / emb[0]:.2f}x wall, {ref[1] / emb[1]:.2f}x CPU time")

        print(f"\n== SupCon encoder step (2 views x {BATCH} = {2 * BATCH} inputs), {device.type} ==")
        enc_configs = {"embedded": WIDTHS["embedded"]["encoder"]}
        if args.paper:
            enc_configs["paper"] = WIDTHS["paper"]["encoder"]
        for name, ek in enc_configs.items():
            slow = name == "paper" and device.type == "cpu"
            step, n_e = encoder_step_fn(ek, device=device)
            ms, cpu_ms = _time(step, repeats=1 if slow else args.repeats, warmup=1, device=device)
            print(f"{name:42s} {ms:9.1f} ms/step wall {cpu_ms:9.1f} ms CPU   "
                  f"encoder {n_e:>9,} params")

    print("\n== contrastive loss, batch 64, D 128 (O2C, tau 0.1), cpu ==")
    g = torch.Generator().manual_seed(0)
    d = torch.randn(64, 128, generator=g, dtype=torch.float64)
    e = torch.randn(64, 128, generator=g, dtype=torch.float64)
    labels = torch.randint(0, N_CLASSES, (64,), generator=g)
    cpu = torch.device("cpu")
    vec = contrastive_loss(d, labels, e, kind="o2c", tau_d=0.1, tau_c=0.1).item()
    ref = brute_force_o2c(d, labels, e, 0.1)
    ms_vec, _ = _time(
        lambda: contrastive_loss(d, labels, e, kind="o2c", tau_d=0.1, tau_c=0.1),
        repeats=50, warmup=3, device=cpu,
    )
    ms_loop, _ = _time(lambda: brute_force_o2c(d, labels, e, 0.1), repeats=3, warmup=1, device=cpu)
    print(f"vectorised {ms_vec:.3f} ms   brute-force loop {ms_loop:.1f} ms   "
          f"ratio {ms_loop / ms_vec:.0f}x   |difference| {abs(vec - ref):.2e}")


if __name__ == "__main__":
    main()
