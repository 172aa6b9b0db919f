"""Typed configuration: `params.yaml` -> validated dataclasses.

`params.yaml` is the one source of every hyperparameter. Its top level holds a `profile` switch
(`embedded`: the procedural dataset and CPU widths; `paper`: the real DCASE dev set, paper widths, GPU),
the base sections below, `variants` (small overrides of the `train` section, one per ablation) and
`profiles` (overrides of the base sections, one per profile). The file must be complete: every key of
every dataclass below is required (the dataclass defaults serve code and tests only; the evaluation's equal the
embedded profile's, which a test checks). `clip_settings` says how the evaluation makes clips, for the stages and the
command line alike. Missing, unknown
and duplicated keys, wrong types, non-finite numbers and out-of-range values are `ConfigError`s naming
the key (`variants.o2c_ct1.tau_c` for a value set by a variant), raised before any work starts; an unknown key, at
any level of the file, is named with the closest known key ("did you mean `eval.gl_iters`?") before any missing key.
Every number has a range, and a setting that asks for more clips than the data holds names both numbers (at load
for the synthetic set, whose size the file fixes; :func:`check_eval_fits` at the reference stage for any data).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occ.device import check_device
from occ.errors import ConfigError
from occ.registry import stage_threads
from occ.typed_values import at_least, build, check_known_keys, in_range, mapping, one_of, typed, unknown_key
from occ.yaml_file import read_yaml

LOSS_KINDS = ("2c", "csupcon", "o2c", "ocsupcon", "none")
SUPCON_KINDS = ("csupcon", "ocsupcon")
#: What the source term ``d2s_i = exp(d_i . f(x_i) / tau_c)`` of a generated sample reads as ``f(x_i)`` in the G step
#: (docs/reference.md, "The source term of generated clips"): "generated", the encoder's embedding of that generated
#: clip, ``f(G(z_i, c_i))``; "paired_real", the embedding of the step's real clip ``x_i`` whose class ``c_i`` the
#: generated sample takes (Eq. (1): ``x_i`` and ``G(z_i, c_i)`` share ``c_i``), no gradient through f.
D2S_SOURCES = ("generated", "paired_real")
#: The smallest temperature accepted (`train.tau_d`, `train.tau_c`, `supcon.temperature`), 100 times below the
#: paper's 0.1. The contrastive losses divide cosine similarities by the temperature: float32 holds the cosine of
#: two unit 128-d vectors to about 1e-6, so below 1e-3 every exponent of a loss carries more than 1e-3 nats of
#: rounding (1 nat at 1e-6), and the loss itself reaches 1 / tau (1e30 at tau = 1e-30, where Adam's squared
#: gradients overflow float32 and the weights stop moving while every value stays finite).
MIN_TEMPERATURE = 1.0e-3
#: The largest learning rate accepted (`train.lr_g`, `train.lr_d`, `supcon.lr`, `supcon.finetune_lr`). Adam moves
#: every weight by about the learning rate per step whatever the gradient's scale, and the networks' weights start
#: at sizes below 5 (orthogonal convolutions, N(0, 1) class embeddings): at 1 or more every step moves each weight
#: by its own size or more (a learning rate of 1e10 puts G's weights near 1e20 in two steps). The recipes use 1e-4
#: to 1e-3.
MAX_LEARNING_RATE = 1.0
#: The largest temperature accepted: 100 times the paper's 1.0 (the contrastive losses flatten toward ln(batch)).
MAX_TEMPERATURE = 100.0
#: The largest `train.contrastive_weight` accepted: 10 times the paper's 1 (Eq. 6). The divergence guard's loss bound
#: grows with it (``occ.guard.gan_loss_bound``); far above 1 the contrastive term swamps the adversarial one.
MAX_CONTRASTIVE_WEIGHT = 10.0
#: The largest `model.g_noise` accepted (the initial scale of a weight of G): far inside the guard's weight bound (50).
MAX_G_NOISE = 5.0
#: The classes of the synthetic set (``occ.data.synth.CLASSES``, the DCASE classes; a test checks they agree): its
#: held-out clips are ``data.heldout_per_class`` times this.
SYNTHETIC_CLASSES = 7


@dataclass
class DataConfig:
    source: str = "synthetic"  # "synthetic": write the procedural foley set to `path`; "path": read audio at `path`
    path: str = "data/foley"  # dataset root (one sub-folder per class)
    layout: str = "dcase"  # "dcase": the DCASE 2023 Task 7 class map; "folders": any class-per-folder collection
    clips_per_class: int = 260  # synthetic only: clips written per class
    heldout_per_class: int = 100  # clips per class held out as the FAD reference set
    cache: str = "data/features.pt"  # feature cache (log-mels, labels, split)

    def check(self) -> None:
        one_of("data.source", self.source, ("synthetic", "path"))
        one_of("data.layout", self.layout, ("dcase", "folders"))
        at_least("data.clips_per_class", self.clips_per_class, 2)
        at_least("data.heldout_per_class", self.heldout_per_class, 1)
        if self.source == "synthetic" and self.clips_per_class < 2 * self.heldout_per_class:
            raise ConfigError(
                f"data.heldout_per_class = {self.heldout_per_class} does not fit data.clips_per_class = "
                f"{self.clips_per_class}: the split holds out that many clips of a class only when it has at least "
                f"twice as many ({2 * self.heldout_per_class}), the rest being its training clips; lower "
                "data.heldout_per_class or raise data.clips_per_class.")


@dataclass
class ModelConfig:
    """Architecture; stored in every checkpoint and compared on load."""

    preset: str = "embedded"  # layout of G, D and the encoder: "embedded" (lean, CPU) or "paper" (BigGAN-like, GPU)
    z_dim: int = 128  # latent size of G
    g_ch: int = 8  # generator base width
    d_ch: int = 8  # discriminator base width
    proj_dim: int = 128  # projection head / class embedding size (paper: 128)
    g_noise: float = 0.0  # initial scale of G's per-feature noise input at its last block (0: off, BigGAN)
    enc_width: int = 16  # encoder (ResNet18) base width; the paper's ResNet18 is 64
    enc_stem: str = "strided"  # encoder stem: "strided" (stride-4, CPU) or "cifar" (3x3 stride 1, SupCon's)

    def check(self) -> None:
        one_of("model.preset", self.preset, ("embedded", "paper"))
        one_of("model.enc_stem", self.enc_stem, ("strided", "cifar"))
        for key in ("z_dim", "g_ch", "d_ch", "proj_dim", "enc_width"):
            at_least(f"model.{key}", getattr(self, key), 1)
        in_range("model.g_noise", self.g_noise, 0.0, MAX_G_NOISE, " (the recipes use 0 and 0.3)")


@dataclass
class SupConConfig:
    steps: int = 300  # SupCon pretraining steps
    batch_size: int = 32
    lr: float = 1.0e-3
    temperature: float = 0.1
    finetune_steps: int = 150  # classification fine-tuning steps
    finetune_lr: float = 1.0e-3
    ckpt_every: int = 100
    threads: int = 1  # torch threads of the supcon stage (occ.registry.STAGES says which stage runs on which)

    def check(self) -> None:
        at_least("supcon.steps", self.steps, 1)
        at_least("supcon.batch_size", self.batch_size, 2)
        _learning_rate("supcon.lr", self.lr)
        _temperature("supcon.temperature", self.temperature)
        at_least("supcon.finetune_steps", self.finetune_steps, 0)
        _learning_rate("supcon.finetune_lr", self.finetune_lr)
        at_least("supcon.ckpt_every", self.ckpt_every, 1)
        at_least("supcon.threads", self.threads, 1)


@dataclass
class TrainConfig:
    """GAN training; `variants` override any of these keys."""

    loss: str = "o2c"  # contrastive term: "2c", "csupcon", "o2c", "ocsupcon" or "none" (hinge only)
    tau_d: float = 0.1  # data-to-data temperature
    tau_c: float = 0.1  # data-to-class (and data-to-source) temperature
    d2s_source: str = "generated"  # SupCon losses: f(x_i) of a generated sample in the G step (D2S_SOURCES)
    d_projection: bool = False  # D reads the label: the projection term <e_D(c), D1(x)> in D2 (Eq. (1)'s D(x, c))
    contrastive_weight: float = 1.0  # weight of the contrastive term (eq. 6: 1)
    steps: int = 400
    batch_size: int = 16
    lr_g: float = 1.0e-4
    lr_d: float = 1.0e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.0  # EMA of G's weights; 0 turns it off
    augment: bool = False  # translation + cutout on D's inputs (never time reversal)
    ckpt_every: int = 100
    bf16: bool = False  # bf16 autocast (CUDA only)
    threads: int = 1  # torch threads of a training process (occ.registry.STAGES)

    def check(self) -> None:
        one_of("train.loss", self.loss, LOSS_KINDS)
        one_of("train.d2s_source", self.d2s_source, D2S_SOURCES)
        if self.d2s_source != "generated" and self.loss not in SUPCON_KINDS:
            raise ConfigError(f"train.d2s_source = {self.d2s_source!r} reads the source term f(x_i), which train.loss = "
                              f"{self.loss!r} does not have (only {list(SUPCON_KINDS)} do): set train.d2s_source: "
                              "generated, or use a SupCon loss.")
        _temperature("train.tau_d", self.tau_d)
        _temperature("train.tau_c", self.tau_c)
        in_range("train.contrastive_weight", self.contrastive_weight, 0.0, MAX_CONTRASTIVE_WEIGHT,
                 " (the paper's Eq. 6 uses 1; far above it the contrastive term swamps the adversarial one)")
        at_least("train.steps", self.steps, 1)
        at_least("train.batch_size", self.batch_size, 2)
        _learning_rate("train.lr_g", self.lr_g)
        _learning_rate("train.lr_d", self.lr_d)
        for key in ("beta1", "beta2", "ema_decay"):
            value = getattr(self, key)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"train.{key} = {value!r} is out of range: use a value in [0, 1).")
        at_least("train.ckpt_every", self.ckpt_every, 1)
        at_least("train.threads", self.threads, 1)


@dataclass
class EvalConfig:
    clips_per_class: int = 40  # generated clips per class (DCASE: 100)
    vocoder: str = "griffinlim"  # "griffinlim" or "hifigan" (the universal V1 checkpoint), or a checkpoint path
    gl_iters: int = 16  # Griffin-Lim iterations
    embedding: str = "aisfx"  # "aisfx", "vggish" or "encoder"
    vggish_weights: str = ""  # path to vggish-10086976.pth (empty: download when online)
    n_bootstrap: int = 0  # bootstrap resamples for the FAD confidence interval (0: off)
    prdc_k: int = 5  # k of precision/recall/density/coverage
    l1_clips: int = 7  # held-out clips (spread over the classes) for the vocoder re-synthesis L1; at most all of them
    tsne_per_class: int = 60  # generated clips per class in each Figure 2 panel
    probe_clips_per_class: int = 60  # training clips per class the recognisability probe is fitted on (0: all)
    threads: int = 1  # torch threads of the reference, step-0, evaluate and figures stages (occ.registry.STAGES)

    def check(self) -> None:
        at_least("eval.clips_per_class", self.clips_per_class, 2)
        at_least("eval.gl_iters", self.gl_iters, 1)
        one_of("eval.embedding", self.embedding, ("aisfx", "vggish", "encoder"))
        at_least("eval.n_bootstrap", self.n_bootstrap, 0)
        at_least("eval.prdc_k", self.prdc_k, 1)
        at_least("eval.l1_clips", self.l1_clips, 1)
        at_least("eval.tsne_per_class", self.tsne_per_class, 2)
        at_least("eval.probe_clips_per_class", self.probe_clips_per_class, 0)
        at_least("eval.threads", self.threads, 1)


@dataclass
class Params:
    profile: str = "embedded"
    seed: int = 0  # data split, SupCon encoder, evaluation latents, standing statistics
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda" or "cuda:N" (GPU N)
    gpu: int | None = None  # which GPU a CUDA run uses; declared by no stage, so pinning one reruns nothing
    seeds: list = field(default_factory=lambda: [0])  # GAN training seeds: one run per (variant, seed)
    run_variants: list = field(default_factory=list)  # the variants the pipeline trains (keys of `variants`)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    supcon: SupConConfig = field(default_factory=SupConConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    variant: str = ""  # the variant applied to `train`, if any

    def check_seed(self, seed: Any) -> int:
        """A training seed given to a notebook or command (``-p seed k``): a seed (:func:`check_seed`).

        Seeds outside `seeds` are allowed (a one-off run); the pipeline runs exactly the seeds of `seeds`.
        """
        return check_seed("seed", seed, where=f" (params.yaml `seeds`: {self.seeds})")

    def check(self) -> None:
        check_device(self.device)
        for section in (self.data, self.model, self.supcon, self.train, self.eval):
            section.check()
        self.check_together()

    def check_together(self) -> None:
        """The values that are valid one by one but must also fit each other (each message names every key)."""
        data, ev = self.data, self.eval
        for key, n, what in (("eval.clips_per_class", ev.clips_per_class, "generated clips of a class"),
                             ("data.heldout_per_class", data.heldout_per_class, "held-out clips of a class")):
            if not ev.prdc_k < n:
                raise ConfigError(f"eval.prdc_k = {ev.prdc_k} does not fit {key} = {n}: precision, recall, density "
                                  f"and coverage use the k-th nearest neighbour among the {what}, so eval.prdc_k "
                                  f"must be below {key}; lower eval.prdc_k or raise {key}.")
        heldout = SYNTHETIC_CLASSES * data.heldout_per_class
        if data.source == "synthetic" and ev.l1_clips > heldout:
            raise ConfigError(f"eval.l1_clips = {ev.l1_clips} asks for more held-out clips than the synthetic set holds "
                              f"({heldout}: data.heldout_per_class = {data.heldout_per_class} for each of its "
                              f"{SYNTHETIC_CLASSES} classes); lower eval.l1_clips to at most {heldout}.")
        train_clips = data.clips_per_class - data.heldout_per_class
        if data.source == "synthetic" and ev.probe_clips_per_class > train_clips:
            raise ConfigError(f"eval.probe_clips_per_class = {ev.probe_clips_per_class} does not fit the "
                              f"{train_clips} training clips per class (data.clips_per_class = {data.clips_per_class} "
                              f"less data.heldout_per_class = {data.heldout_per_class}): the probe would be fitted "
                              "on fewer clips than it says; lower eval.probe_clips_per_class (0: all) or raise "
                              "data.clips_per_class.")


def check_eval_fits(ev: EvalConfig, *, heldout: int, fewest_training: int, cache: str) -> None:
    """The evaluation settings that pick clips of the data fit the feature cache ``cache`` (any data source): a
    ConfigError naming both numbers when ``eval.l1_clips`` exceeds its ``heldout`` held-out clips or
    ``eval.probe_clips_per_class`` the ``fewest_training`` training clips of its smallest class."""
    if ev.l1_clips > heldout:
        raise ConfigError(f"eval.l1_clips = {ev.l1_clips} asks for more held-out clips than the feature cache {cache} "
                          f"holds ({heldout}); lower eval.l1_clips to at most {heldout}.")
    if ev.probe_clips_per_class > fewest_training:
        raise ConfigError(f"eval.probe_clips_per_class = {ev.probe_clips_per_class} asks for more training clips than "
                          f"the smallest class of the feature cache {cache} holds ({fewest_training}); lower "
                          f"eval.probe_clips_per_class to at most {fewest_training} (0: all of each class).")


SECTIONS = {"data": DataConfig, "model": ModelConfig, "supcon": SupConConfig, "train": TrainConfig, "eval": EvalConfig}
TOP_SCALARS = {"profile": str, "seed": int, "device": str}
#: Top-level keys a profile cannot set: `gpu` says where a run happens, never what it computes.
PLACEMENT = ("gpu",)
#: Top-level lists that span the pipeline's run matrix (dvc.yaml reads them from the file, so no profile changes them).
TOP_AXES = ("seeds", "run_variants")
#: The largest seed: every seed is a whole number in [0, MAX_SEED], as torch.manual_seed and numpy accept.
MAX_SEED = 2**32 - 1


#: Params fields that are not read from the file.
DERIVED = ("variant",)
#: Top-level keys that hold overrides rather than values.
OVERRIDES = ("variants", "profiles")
#: Built-in choices of `eval.vocoder` (anything else must be an existing checkpoint file).
VOCODERS = ("griffinlim", "hifigan")


def clip_settings(params: Params, root: str | Path) -> dict:
    """How the evaluation makes every run's clips: the one owner of these settings, read by the step-0 and evaluate
    stages (``occ.stages.evaluate``) and by ``occ generate`` / ``occ fad`` (their defaults).

    ``seed``: the base seed of the latents and standing statistics (``params.seed``, whatever the run's training
    seed); ``threads``: the evaluate stage's (``eval.threads``); ``vocoder`` (``eval.vocoder``; a checkpoint path
    relative to the project root ``root``, where the stages run, made absolute); ``gl_iters`` (``eval.gl_iters``);
    ``device`` (``params.device``).
    """
    vocoder = params.eval.vocoder
    if vocoder not in ("griffinlim", "hifigan") and not Path(vocoder).expanduser().is_absolute():
        vocoder = str(Path(root) / vocoder)
    return {"seed": params.seed, "threads": stage_threads(params, "evaluate"), "vocoder": vocoder,
            "gl_iters": params.eval.gl_iters, "device": params.device}


def load_params(path: str | Path = "params.yaml", *, variant: str | None = None, profile: str | None = None) -> Params:
    """Read, merge and validate `params.yaml`.

    Parameters
    ----------
    path : str or Path
        The params file.
    variant : str, optional
        A key of `variants`; its entries override `train`.
    profile : str, optional
        Overrides the file's `profile` switch.

    Returns
    -------
    Params
        The resolved, validated configuration.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such params file; run from the repository root or pass its path.")
    raw = read_yaml(path)
    return resolve_params(raw, variant=variant, profile=profile, source=str(path), root=path.parent)


def missing_keys(raw: Any) -> list[str]:
    """The keys a complete params file must hold and `raw` lacks (``"train"``, ``"train.loss"``, ...).

    Derived from the dataclass fields, so a new field is required as soon as it exists.
    """
    raw = raw if isinstance(raw, dict) else {}
    missing = []
    for f in dataclasses.fields(Params):
        if f.name in DERIVED:
            continue
        if f.name not in raw:
            missing.append(f.name)
        elif f.name in SECTIONS and isinstance(raw[f.name], dict):
            missing += [f"{f.name}.{g.name}" for g in dataclasses.fields(SECTIONS[f.name]) if g.name not in raw[f.name]]
    missing += [key for key in OVERRIDES if key not in raw]
    return missing


def resolve_params(raw: dict, *, variant: str | None = None, profile: str | None = None, source: str = "params",
                   root: str | Path | None = None) -> Params:
    """Merge the base sections, the selected profile and the selected variant, then validate.

    Parameters
    ----------
    raw : dict
        The parsed params file; it must hold every key (see :func:`missing_keys`).
    variant : str, optional
        A key of `variants`; its entries override `train`.
    profile : str, optional
        Overrides the file's `profile` switch.
    source : str
        How the file is named in error messages.
    root : str or Path, optional
        Folder against which a relative `eval.vocoder` path is checked (default: the working directory).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values, got {type(raw).__name__}.")
    check_known_keys(raw, _schema(), source=source)  # a misspelt key is named before the key it leaves missing
    missing = missing_keys(raw)
    if missing:
        raise ConfigError(
            f"{source}: missing {', '.join(f'`{key}`' for key in missing)}; params.yaml must give every key "
            "(the code has no defaults for them): add them (see the committed params.yaml)."
        )
    raw = copy.deepcopy(raw)
    variants = mapping(raw.pop("variants"), "variants") if raw["variants"] is not None else {}
    profiles = mapping(raw.pop("profiles"), "profiles") if raw["profiles"] is not None else {}
    known_top = set(TOP_SCALARS) | set(SECTIONS) | set(TOP_AXES) | set(PLACEMENT)
    for name, prof in profiles.items():
        prof = mapping(prof, f"profiles.{name}") if prof is not None else {}
        for section, overrides in prof.items():
            if section in PLACEMENT:
                raise ConfigError(f"{source}: profiles.{name}.{section}: `{section}` says which GPU runs a stage, not "
                                  "what it computes, so no profile sets it; set it at the top level (or `-S gpu=N`).")
            if section in TOP_AXES:
                raise ConfigError(f"{source}: profiles.{name}.{section}: `{section}` spans the pipeline's runs and is "
                                  "read by dvc.yaml from the top level, so a profile cannot change it; set it at the "
                                  "top level.")
            if section not in SECTIONS and section not in TOP_SCALARS:
                raise unknown_key(section, known_top, prefix=f"profiles.{name}", source=source)
            if section in SECTIONS:
                mapping(overrides, f"profiles.{name}.{section}")
    for name, overrides in variants.items():
        mapping(overrides, f"variants.{name}")
    profile = profile if profile is not None else raw.get("profile", "embedded")
    if profile != "embedded" and profile not in profiles:
        raise ConfigError(f"{source}: profile {profile!r} is not defined under `profiles` (defined: {sorted({*profiles, 'embedded'})}).")
    merged = dict(raw)
    for section, overrides in (profiles.get(profile) or {}).items():
        if section == "device" and overrides == "cuda" and str(merged.get("device")).startswith("cuda:"):
            continue  # the profile asks for a GPU, the top level (`-S device=cuda:1`) says which one
        if section in TOP_SCALARS:
            merged[section] = overrides
        else:
            merged[section] = {**(merged.get(section) or {}), **(overrides or {})}
    merged["profile"] = profile
    if variant and variant not in variants:
        raise ConfigError(f"{source}: variant {variant!r} is not defined under `variants` (defined: {sorted(variants)}).")
    _seed_list(merged["seeds"], source)
    _run_variants(merged["run_variants"], variants, source)
    # the sections with the profile applied: a bad value set by the profile is named by its profile key
    by_profile = {f"{section}.{key}": f"profiles.{profile}.{section}.{key}"
                  for section, overrides in (profiles.get(profile) or {}).items() if section in SECTIONS
                  for key in (overrides or {})}
    by_profile.update({key: f"profiles.{profile}.{key}" for key in (profiles.get(profile) or {}) if key in TOP_SCALARS})
    try:
        _params(merged, "", root)
    except ConfigError as exc:
        raise _renamed(exc, by_profile) from None
    # every variant, the selected one first: a bad value set by a variant is named by its variant key
    for name in sorted(variants, key=lambda n: n != variant):
        _check_variant(merged["train"], variants[name] or {}, name)
    if variant:
        merged["train"] = {**merged["train"], **(variants[variant] or {})}
    return _params(merged, variant or "", root)


def _schema() -> dict:
    """The keys params.yaml may hold, at every level (:func:`occ.typed_values.check_known_keys`)."""
    sections = {name: dict.fromkeys(f.name for f in dataclasses.fields(cls)) for name, cls in SECTIONS.items()}
    profile = {**sections, **dict.fromkeys((*TOP_SCALARS, *PLACEMENT, *TOP_AXES))}
    return {**profile, "variants": ("each", sections["train"]), "profiles": ("each", profile)}


def _params(merged: dict, variant: str, root: str | Path | None) -> Params:
    """Build and check the Params of merged sections."""
    params = Params(
        profile=typed("profile", merged["profile"], str),
        seed=typed("seed", merged["seed"], int),
        device=_placed(typed("device", merged["device"], str), _gpu(merged["gpu"])),
        gpu=_gpu(merged["gpu"]),
        variant=variant,
        seeds=_seed_list(merged["seeds"], "params"),
        run_variants=list(merged["run_variants"]),
        **{name: build(cls, merged.get(name) or {}, name) for name, cls in SECTIONS.items()},
    )
    params.check()
    check_seed("seed", params.seed, where="; fix `seed` in params.yaml")
    _check_vocoder(params.eval.vocoder, root)
    return params


def _gpu(value: Any) -> int | None:
    """`gpu`: null or a GPU index (0 first, as nvidia-smi counts)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"gpu = {value!r} must be null or a GPU index (0, 1, ...); fix `gpu` in params.yaml "
                          "(or the experiment's `-S gpu=N`).")
    return value


def _placed(device: str, gpu: int | None) -> str:
    """`device` with `gpu` applied: ``cuda`` -> ``cuda:N``; ``auto`` -> ``cuda:N`` where CUDA is present, else ``cpu``.

    `gpu` only says which of the machine's GPUs runs a stage, so no stage declares it: an experiment pinned to
    GPU 1 (``-S gpu=1``) reruns only what its other changes rerun (``device`` is declared: cpu vs cuda differ).
    """
    if gpu is None or device == "cpu":
        return device
    if device.startswith("cuda:") and device != f"cuda:{gpu}":
        raise ConfigError(f"device = {device!r} and gpu = {gpu} name different GPUs; set `device: cuda` and pin the GPU "
                          "with `gpu` alone (or set `gpu: null`).")
    if device == "auto":
        import torch  # only a pinned GPU needs to know whether CUDA is there

        return f"cuda:{gpu}" if torch.cuda.is_available() else "cpu"
    return f"cuda:{gpu}"


def _renamed(exc: ConfigError, names: dict[str, str]) -> ConfigError:
    """``exc`` with its leading key replaced by where the value was written (``train.tau_c`` -> ``variants.x.tau_c``)."""
    message = str(exc)
    for key, where in names.items():
        if message.startswith(f"{key} "):
            return ConfigError(f"{where}{message[len(key):]}")
    return exc


def variant_names(path: str | Path = "params.yaml") -> list[str]:
    """The variants defined in `params.yaml`, in file order."""
    raw = read_yaml(path) or {}
    variants = raw.get("variants") if isinstance(raw, dict) else None
    return list(mapping(variants, "variants").keys()) if variants is not None else []


def to_dict(obj: Any) -> dict:
    """A plain dict of a config dataclass (for checkpoints and logs)."""
    return dataclasses.asdict(obj)


def _check_variant(train: Any, overrides: dict, name: str) -> None:
    """Build and check `train` with a variant's overrides; an error in an overridden key names the variant key."""
    prefix = f"variants.{name}"
    for key, value in overrides.items():
        known = [f.name for f in dataclasses.fields(TrainConfig)]
        if key not in known:
            raise unknown_key(key, known, prefix=prefix)
        typed(f"{prefix}.{key}", value, typing.get_type_hints(TrainConfig)[key])
    try:
        build(TrainConfig, {**mapping(train, "train"), **overrides}, "train").check()
    except ConfigError as exc:
        raise _renamed(exc, {f"train.{key}": f"{prefix}.{key}" for key in overrides}) from None


def check_seed(key: str, value: Any, *, where: str = "") -> int:
    """A seed: a whole number in [0, :data:`MAX_SEED`]; else a ConfigError naming ``key`` (``where`` follows it)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{key} = {value!r} must be a whole number in [0, {MAX_SEED}]{where}.")
    return value


def _check_vocoder(value: str, root: str | Path | None) -> None:
    """`eval.vocoder` is "griffinlim", "hifigan" or the path of an existing HiFi-GAN checkpoint."""
    if value in VOCODERS:
        return
    path = Path(value).expanduser()
    if not path.is_absolute() and root is not None:
        path = Path(root) / path
    if not path.is_file():
        raise ConfigError(
            f"eval.vocoder = {value!r} is neither one of {list(VOCODERS)} nor an existing checkpoint file "
            f"({path} not found): fix the spelling or the path."
        )


def _seed_list(value: Any, source: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{source}: seeds = {value!r} must be a non-empty list of whole numbers, e.g. [0, 1, 2].")
    for s in value:
        check_seed(f"{source}: an entry of seeds", s)
    if len(set(value)) != len(value):
        raise ConfigError(f"{source}: seeds = {value!r} repeats a seed; list each seed once.")
    return list(value)


def _run_variants(value: Any, variants: dict, source: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: run_variants = {value!r} must be a non-empty list of variant names "
                          f"(keys of `variants`: {sorted(variants)}).")
    unknown = [v for v in value if v not in variants]
    if unknown:
        raise ConfigError(f"{source}: run_variants names {unknown}, which `variants` does not define "
                          f"(defined: {sorted(variants)}).")
    if len(set(value)) != len(value):
        raise ConfigError(f"{source}: run_variants = {value!r} repeats a variant; list each once.")
    return list(value)


def _temperature(key: str, value: float) -> None:
    """A temperature: in [:data:`MIN_TEMPERATURE`, :data:`MAX_TEMPERATURE`]."""
    if not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        raise ConfigError(f"{key} = {value!r} is out of range: use a temperature in [{MIN_TEMPERATURE}, "
                          f"{MAX_TEMPERATURE:g}] (below it float32 rounding dominates the contrastive loss, which grows "
                          f"as 1 / {key.split('.')[-1]}; the paper uses 0.1 and 1.0).")


def _learning_rate(key: str, value: float) -> None:
    """A learning rate: in (0, :data:`MAX_LEARNING_RATE`]."""
    if not 0 < value <= MAX_LEARNING_RATE:
        raise ConfigError(f"{key} = {value!r} is out of range: use a learning rate in (0, {MAX_LEARNING_RATE}] (Adam "
                          "moves every weight by about the learning rate per step; the recipes use 1e-4 to 1e-3).")
