"""The divergence guard: the bounds of a healthy run, the checks that stop a training run past them, and the check
that refuses a checkpoint past them on every load.

A run *diverges* when a loss or a weight becomes NaN or infinite; it *runs away* when every value stays finite but
leaves the range a healthy run keeps to. Both stop the run with :class:`~occ.errors.TrainingDivergedError`, every
process together, naming the step, the network or loss, the value, the bound, the settings to suspect, what to do about
them (:func:`remedy`) and the checkpoint kept (:func:`kept_message`); the step loop (``occ.train.step_loop``) only calls
the checks:

* :func:`stop_if_diverged`: a loss of every process at one step; a NaN or infinite loss fails
  :func:`check_loss_finite`, a finite one past the run's loss bound fails :func:`check_loss_bound`.
* :func:`stop_if_weights_run_away`: the parameters of the watched networks at the end of every step.
* :func:`check_weights_finite`: every floating-point entry of a network's state (buffers too) before a checkpoint.
* :func:`check_checkpoint_weights`: a checkpoint's networks on load (from ``occ.checkpoint.load_checkpoint``).

The bounds: a loss of a GAN run may reach :data:`LOSS_FLOOR` plus the most its contrastive term can take at all
(:func:`gan_loss_bound`, :func:`supcon_loss_bound`); every parameter :data:`WEIGHT_FLOOR` plus
:data:`WEIGHT_PER_STEP` per step of the run (:func:`weight_bound`). They scale with what a configuration may change
(the contrastive temperatures and weight, the steps), so a longer or wider run of the ``paper`` profile stays inside
them. docs/recipe.md ("The divergence guard's bounds") gives the measurements they rest on and their margins. The
checks read losses and weights only: they draw no random number and change no operation, so a healthy run's weights
and log are bit-identical with and without them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from occ.errors import CheckpointError, TrainingDivergedError

__all__ = ["LOSS_FLOOR", "WEIGHT_FLOOR", "WEIGHT_PER_STEP", "HEALTHY_LOSS", "HEALTHY_WEIGHT", "BUFFER_NAMES",
           "contrastive_ceiling", "gan_loss_bound", "supcon_loss_bound", "weight_bound", "gan_weight_bound",
           "encoder_weight_bound", "loss_in_bounds", "largest_magnitude", "weights_in_bounds", "largest_weight",
           "culprit", "remedy", "suspect_sentence", "advice_for", "check_loss_finite", "check_loss_bound", "stop_if_diverged", "stop_if_weights_run_away",
           "check_weights_finite", "kept_message", "check_checkpoint_weights"]

#: The loss bound's part for the adversarial hinge terms (and the fine-tuning cross-entropy): over 25 times the
#: committed runs' largest adversarial term, 9 times the largest first-step ``|L_G|`` measured (54).
LOSS_FLOOR = 500.0
#: The weight bound of a run of no steps: 11 times the largest weight of a healthy run (4.44).
WEIGHT_FLOOR = 50.0
#: What the weight bound grows by per step of a run: 2.5 times the recipes' largest learning rate (Adam moves a
#: weight by about its learning rate per step).
WEIGHT_PER_STEP = 1.0e-3
#: The largest ``|L_D|`` / ``|L_G|`` of the committed runs (embedded profile, 800 steps, every variant x 3 seeds).
HEALTHY_LOSS = 29.6
#: The largest weight of a healthy run (a class embedding drawn from N(0, 1); every preset, ten seeds).
HEALTHY_WEIGHT = 4.44
#: The last name part of the state-dict entries that are buffers, not weights (BatchNorm's running statistics, the
#: power-iteration vectors of spectral norm): the guard reads parameters only, in training and on load.
BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked", "_u", "_v")
#: The configuration's limits the loss bound is computed within (``occ.config.MIN_TEMPERATURE`` and
#: ``occ.config.MAX_CONTRASTIVE_WEIGHT``; a test checks they agree).
SMALLEST_TEMPERATURE = 1.0e-3
LARGEST_CONTRASTIVE_WEIGHT = 10.0
#: How a checkpoint's networks are named in messages, by payload entry (``occ.checkpoint.NETWORK_PARTS``).
NETWORK_LABELS = {"g": "G", "d": "D", "g_ema": "EMA G", "encoder": "f"}


def contrastive_ceiling(tau_d: float, tau_c: float, batch_size: int) -> float:
    """The largest value any contrastive term of ``occ.train.losses`` can take on a batch of ``batch_size``:
    ``2 / min(tau_d, tau_c) + ln(2 * batch_size)`` (every exponent is a cosine over a temperature, the denominator
    a sum of at most ``batch_size + 1`` terms; the SupCon loss of f, with ``tau_d = tau_c``, over ``2 * batch_size``)."""
    return 2.0 / min(tau_d, tau_c) + math.log(2 * batch_size)


def _ceiling(tau_d: float, tau_c: float, batch_size: int, weight: float = 1.0) -> float:
    """:func:`contrastive_ceiling` times ``weight``, both read within the configuration's limits (a temperature of at
    least :data:`SMALLEST_TEMPERATURE`, a weight of at most :data:`LARGEST_CONTRASTIVE_WEIGHT`): a value past them,
    set in code, has the bound of the limit, so the guard still stops what the configuration would refuse."""
    smallest = SMALLEST_TEMPERATURE
    return min(weight, LARGEST_CONTRASTIVE_WEIGHT) * contrastive_ceiling(max(tau_d, smallest), max(tau_c, smallest),
                                                                         batch_size)


def gan_loss_bound(train: Any) -> float:
    """The bound on ``|L_D|`` and ``|L_G|`` of a GAN run of ``train`` (a ``TrainConfig``): :data:`LOSS_FLOOR` plus
    ``train.contrastive_weight`` times the contrastive term's ceiling (none for loss ``"none"``)."""
    if train.loss == "none":
        return LOSS_FLOOR
    return LOSS_FLOOR + _ceiling(train.tau_d, train.tau_c, train.batch_size, train.contrastive_weight)


def supcon_loss_bound(cfg: Any) -> float:
    """The bound on the SupCon and fine-tuning losses of f (``cfg`` a ``SupConConfig``)."""
    return LOSS_FLOOR + _ceiling(cfg.temperature, cfg.temperature, cfg.batch_size)


def weight_bound(steps: int) -> float:
    """The bound on every weight of a run of ``steps`` steps: ``WEIGHT_FLOOR + WEIGHT_PER_STEP * steps``."""
    return WEIGHT_FLOOR + WEIGHT_PER_STEP * max(int(steps), 0)


def gan_weight_bound(train: Any) -> float:
    """The weight bound of G, D and the EMA of G in a run of ``train`` (``train.steps`` steps)."""
    return weight_bound(train.steps)


def encoder_weight_bound(cfg: Any) -> float:
    """The weight bound of the encoder f (``supcon.steps + supcon.finetune_steps`` steps)."""
    return weight_bound(cfg.steps + cfg.finetune_steps)


def loss_in_bounds(loss: torch.Tensor, bound: float = LOSS_FLOOR) -> bool:
    """``loss`` (0-d) is finite and at most ``bound`` in magnitude."""
    return bool(loss.detach().abs() <= bound)  # NaN compares False


def largest_magnitude(tensors: Iterable[torch.Tensor]) -> float:
    """The largest ``|value|`` over ``tensors`` (NaN when one holds a NaN; 0 for none): one min/max read per tensor,
    no copy."""
    largest = 0.0
    for tensor in tensors:
        if tensor.numel() == 0:
            continue
        low, high = (float(v) for v in torch.aminmax(tensor.detach()))
        if math.isnan(low) or math.isnan(high):
            return math.nan
        largest = max(largest, high, -low)
    return largest


def weights_in_bounds(tensors: Iterable[torch.Tensor], bound: float = WEIGHT_FLOOR) -> bool:
    """Every value of ``tensors`` (a network's parameters) is finite and at most ``bound`` in magnitude."""
    return largest_magnitude(tensors) <= bound  # NaN compares False


def _largest(named: Mapping[str, Iterable[tuple[str, torch.Tensor]]]) -> tuple[str, str, float]:
    best = ("", "", -1.0)
    for label, tensors in named.items():
        for name, tensor in tensors:
            value = largest_magnitude([tensor])
            if math.isnan(value):
                return label, name, value
            if value > best[2]:
                best = (label, name, value)
    return best


def largest_weight(modules: Mapping[str, torch.nn.Module | None]) -> tuple[str, str, float]:
    """The network (its key in ``modules``), parameter name and magnitude of the largest (or first NaN) parameter
    value of ``modules`` (``None`` entries skipped)."""
    return _largest({label: module.named_parameters() for label, module in modules.items() if module is not None})


def culprit(parts: Mapping[str, torch.Tensor | float]) -> str:
    """The key of ``parts`` whose value is largest in magnitude (NaN counts as largest): the term that ran away."""
    def size(value: torch.Tensor | float) -> float:
        v = abs(float(value.detach() if isinstance(value, torch.Tensor) else value))
        return math.inf if math.isnan(v) else v

    return max(parts, key=lambda key: size(parts[key]))


def remedy(settings: Iterable[str]) -> str:
    """What to do about the suspect ``settings`` (texts naming ``section.key`` settings): lower each one, raise each
    temperature (``"lower train.contrastive_weight or raise train.tau_d / train.tau_c"``); every setting named once,
    in order."""
    names = list(dict.fromkeys(re.findall(r"\b[a-z]+\.[a-z_0-9]+\b", " ".join(settings))))
    raise_ = [n for n in names if "tau" in n or "temperature" in n]
    lower = [n for n in names if n not in raise_]
    parts = [f"lower {' / '.join(lower)}"] * bool(lower) + [f"raise {' / '.join(raise_)}"] * bool(raise_)
    return " or ".join(parts) or "change the settings of the run"


def _said(text: str | Callable[[], str]) -> str:
    """``text``, or what the function ``text`` returns (messages are made only when a check fails)."""
    return text() if callable(text) else text


def _sentence(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def check_loss_finite(loss: torch.Tensor, *, what: str, parts: Mapping[str, torch.Tensor] | None = None,
                      advice: str | Callable[[], str], kept: str, suspect: str | Callable[[], str] = "") -> None:
    """Raise :class:`~occ.errors.TrainingDivergedError` when ``loss`` is NaN or infinite.

    Parameters
    ----------
    loss : torch.Tensor
        A 0-d loss.
    what : str
        What diverged, e.g. ``"training diverged at step 12: the discriminator loss L_D"``.
    parts : mapping of str to torch.Tensor, optional
        The loss's terms, listed in the message.
    advice : str or callable
        What to change before retrying (or a function making it, called only on failure).
    kept : str
        Which checkpoint survives (:func:`kept_message`).
    suspect : str or callable
        The sentence naming the setting to suspect (or a function making it, called only on failure).
    """
    value = loss.item()
    if math.isfinite(value):
        return
    raise TrainingDivergedError(_sentence(f"{what} is {value!r}{_terms(parts)}.", _said(suspect), kept,
                                          _said(advice)))


def check_loss_bound(loss: torch.Tensor, *, bound: float, what: str, parts: Mapping[str, torch.Tensor] | None = None,
                     advice: str | Callable[[], str], kept: str, suspect: str | Callable[[], str] = "") -> None:
    """Raise :class:`~occ.errors.TrainingDivergedError` when ``loss`` is finite but past ``bound`` in magnitude (the
    run's loss bound, :func:`gan_loss_bound` or :func:`supcon_loss_bound`); the other arguments as in
    :func:`check_loss_finite`."""
    value = loss.item()
    if not math.isfinite(value) or abs(value) <= bound:
        return
    raise TrainingDivergedError(_sentence(
        f"{what} is {value!r}{_terms(parts)}, past {bound:.4g}, the divergence guard's bound for this run, which no "
        "healthy run reaches.", _said(suspect), kept, _said(advice)))


def _terms(parts: Mapping[str, torch.Tensor] | None) -> str:
    return f" ({', '.join(f'{k}={v.item()!r}' for k, v in parts.items())})" if parts else ""


def stop_if_diverged(loss: torch.Tensor, *, w: Any, what: str, parts: Mapping[str, torch.Tensor] | None = None,
                     advice: str | Callable[[], str], kept: str, suspect: str | Callable[[], str] = "",
                     bound: float = LOSS_FLOOR, elsewhere: str | Callable[[], str] | None = None) -> None:
    """The loss check of a training step: every process stops together when one sees a ``loss`` that is not finite
    (:func:`check_loss_finite`) or past ``bound`` (:func:`check_loss_bound`).

    The processes agree first (``w.all_true``, a collective of ``occ.train.distributed.World``, so every process must
    call it in the same step); then the one whose loss failed raises with its value and ``parts``, and the others
    raise saying that it failed on another process.

    Parameters
    ----------
    loss : torch.Tensor
        A 0-d loss of this process.
    w : World
        This process's world (``occ.train.distributed.world()``).
    what, parts, advice, kept, suspect
        As in :func:`check_loss_finite`.
    bound : float
        The run's loss bound.
    elsewhere : str or callable, optional
        The advice of the processes whose own loss passed (default: ``advice``).

    Raises
    ------
    TrainingDivergedError
        On every process, when ``loss`` fails on any.
    """
    if w.all_true(loss_in_bounds(loss, bound)):
        return
    said = dict(what=what, parts=parts, advice=advice, kept=kept, suspect=suspect)
    check_loss_finite(loss, **said)
    check_loss_bound(loss, bound=bound, **said)
    raise TrainingDivergedError(_sentence(f"{what} is not finite or past {bound:g} on another process.", kept,
                                          _said(advice if elsewhere is None else elsewhere)))


def stop_if_weights_run_away(watch: Mapping[str, torch.nn.Module | None], *, w: Any, bound: float, where: str,
                             suspect: Callable[[str], str], advice: Callable[[str | None], str], kept: str,
                             parameters: Iterable[torch.Tensor] | None = None) -> None:
    """The weight check of a training step: every process stops together with
    :class:`~occ.errors.TrainingDivergedError` when a parameter of a network of ``watch`` (label -> network; ``None``
    entries skipped) is NaN, infinite or past ``bound`` in magnitude.

    The message starts with ``where`` (``"training diverged at step 3: "``) and names the network, the parameter, its
    value and the bound, then ``suspect(label)``, ``kept`` and ``advice(label)`` (``advice(None)`` on the processes
    whose own weights passed). ``parameters`` lists the watched parameters once, when the caller keeps such a list.
    """
    if parameters is None:
        parameters = [p for module in watch.values() if module is not None for p in module.parameters()]
    here = weights_in_bounds(parameters, bound)
    if w.all_true(here):
        return
    if here:
        raise TrainingDivergedError(_sentence(
            f"{where}a network's weights are not finite or past {bound:g} on another process.", kept, advice(None)))
    label, name, value = largest_weight(watch)
    past = (f", past {bound:g}, the divergence guard's bound for this run, which no healthy run reaches"
            if math.isfinite(value) else "")
    raise TrainingDivergedError(_sentence(f"{where}{label} weight {name!r} is {value:.3g}{past}.", suspect(label),
                                          kept, advice(label)))


def check_weights_finite(*modules: torch.nn.Module | None, step: int, advice: str, kept: str) -> None:
    """Raise :class:`~occ.errors.TrainingDivergedError` before a checkpoint would store a non-finite entry of a
    module's state (parameters and buffers; ``None`` entries skipped)."""
    for module in modules:
        if module is None:
            continue
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise TrainingDivergedError(
                    f"training diverged at step {step}: {type(module).__name__} weight {name!r} is not finite, so "
                    f"no checkpoint was written. {kept} {advice}"
                )


def kept_message(ckpt_path: Path, last_saved: int, *, step0_path: Path | None = None) -> str:
    """The sentence of a divergence error that says which checkpoint survives.

    Parameters
    ----------
    ckpt_path : Path
        The run's checkpoint.
    last_saved : int
        Step of the last checkpoint written (0: none yet).
    step0_path : Path, optional
        The untrained models' file, named when no checkpoint has been written yet.
    """
    if last_saved > 0:
        return f"The last good checkpoint {ckpt_path} (step {last_saved}) was kept."
    if step0_path is not None:
        return f"No checkpoint had been written yet ({step0_path} holds step 0)."
    return "No checkpoint had been written yet."


def suspect_sentence(suspects: Mapping[str, str], key: str) -> str:
    """The sentence naming the setting to suspect for ``key`` (a loss term or a watched network) in ``suspects``
    (empty when it has none): ``"Suspect setting: train.lr_d (D ran away)."``."""
    setting = suspects.get(key)
    return f"Suspect setting: {setting} ({key} ran away)." if setting else ""


def advice_for(advice: str, suspects: Mapping[str, str], key: str | None) -> str:
    """``advice`` with ``{remedy}`` filled in by :func:`remedy` of the settings suspected for ``key`` (every suspect
    setting when ``key`` is ``None`` or has none)."""
    if "{remedy}" not in advice:
        return advice
    settings = [suspects[key]] if key in suspects else list(suspects.values())
    return advice.replace("{remedy}", remedy(settings))


def _steps_of(payload: Mapping[str, Any]) -> int:
    """The steps of the run that wrote a checkpoint (its ``train`` entry), as its weight bound counts them."""
    train = payload.get("train") or {}
    steps = train.get("steps", payload.get("step", 0))
    if payload.get("kind") == "encoder":
        steps = int(steps) + int(train.get("finetune_steps", 0))
    return max(int(steps), int(payload.get("step", 0) or 0))


def check_checkpoint_weights(payload: Mapping[str, Any], parts: Iterable[str], *, path: Any, rerun: str) -> None:
    """Raise :class:`~occ.errors.CheckpointError` when a weight of a checkpoint's networks (the state dicts under
    ``parts``; buffers, :data:`BUFFER_NAMES`, not read) passes the weight bound of the run that wrote it.

    The message names the file, the network, the parameter, its value and the bound: training never saves such
    weights (the guard stops a run before its checkpoint), so the file was damaged or written elsewhere.
    """
    bound = weight_bound(_steps_of(payload))
    named = {}
    for part in parts:
        state = payload.get(part)
        if isinstance(state, Mapping):
            named[NETWORK_LABELS.get(part, part)] = [
                (name, value) for name, value in state.items() if isinstance(value, torch.Tensor)
                and value.is_floating_point() and name.rsplit(".", 1)[-1] not in BUFFER_NAMES]
    label, name, value = _largest(named)
    if value > bound:
        raise CheckpointError(
            f"{path}: {label} weight {name!r} is {value:.4g}, past the divergence guard's bound {bound:g} for its run "
            f"({WEIGHT_FLOOR:g} + {WEIGHT_PER_STEP:g} per step of {_steps_of(payload)} steps; healthy runs stay below "
            f"{HEALTHY_WEIGHT:g}): training never saves such weights, so the file was damaged or written elsewhere "
            f"and can be neither used nor resumed; delete it with its run folder {getattr(path, 'parent', path)} and "
            f"rerun {rerun}.")
