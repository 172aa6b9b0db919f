"""Learning curves per CPU-second: how recognisable a variant's clips become, for several training recipes.

For each recipe and each seed of ``--seeds``, one run of ``--variant`` is trained and continued through the step
counts of ``--steps`` (resume, so every point costs only its new steps); at each point the generator is evaluated as
the `evaluate` stage does (``--n-per-class`` clips per class, the vocoder and embedding of params.yaml, no bootstrap):
the recognisability probe's accuracy (``occ.metrics.probe``, fitted as the `reference` stage fits it: on the first
``eval.probe_clips_per_class`` training clips of each class), what its confusion matrix says
(``occ.metrics.confusion``: the mutual information between the class asked for and the class recognised, its
95th percentile with the classes shuffled, the accuracy under the best one-to-one relabelling, the classes recognised
as themselves, and the reading "class-blind" / "under their own labels" / "under other labels"), the mean FAD against
the held-out clips, the fine-tuned encoder's accuracy, and the class and source terms' shares of G's contrastive
numerator over the last 100 steps (``log.csv``). Training time is the process CPU time of the training calls (and
their wall time), so runs side by side (``--jobs 2``, one thread each) are compared fairly.

Prints one markdown table (recipe, seed, steps, CPU s, wall s, probe, MI, relabelled, FAD, encoder, shares) and
writes a PNG of probe accuracy and FAD against training CPU-seconds. The probe's ceiling (held-out real clips, raw and
through log-mel + the vocoder) is printed first, so a weak generator is told apart from a weak probe. With two
recipes and two or more seeds it also prints, at the last step count, each measure per seed for both and the paired
95 % t interval over seeds of the second recipe minus the first (``occ.report.intervals.paired_comparison``), and
writes it to ``<out>/compare_<variant>.md``.

Needs the `data` stage (and `supcon` for the SupCon variants and the encoder accuracy).

Run: ``python benchmarks/learning_curve.py --recipes no_ema,current --steps 400,800,1600 --jobs 2`` (the EMA of G
against none: docs/recipe.md, "The learning curve"); the two readings of the source term over three seeds:
``python benchmarks/learning_curve.py --variant ocsupcon --recipes generated,paired_real --seeds 0,1,2 --steps 800``
(docs/recipe.md, "The source term of generated clips").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

#: name -> (overrides of `train`, overrides of `model`[, options]); "current" is params.yaml as it is (since the
#: learning curve chose it, with the EMA of G, 0.999), "no_ema" the same without the EMA (the recipe before). "ema" and
#: the "ema_*" recipes were written against that earlier recipe: "ema" is now "current". Options:
#: ``{"mel_norm": "per_bin"}`` trains on SpecGAN-style per-mel-bin standardised log-mels (mean and standard deviation
#: of each bin over the training clips, clipped at 3 standard deviations and scaled to [-1, 1]); the evaluation undoes
#: it (``PerBinOutput``) before the vocoder. "cw4" weights the contrastive term 4x (``train.contrastive_weight``).
RECIPES = {
    "current": ({}, {}),
    "no_ema": ({"ema_decay": 0.0}, {}),
    "per_bin": ({}, {}, {"mel_norm": "per_bin"}),
    "b32": ({"batch_size": 32}, {}),
    "ttur": ({"lr_g": 1e-4, "lr_d": 4e-4}, {}),
    "ema": ({"ema_decay": 0.999}, {}),
    "ema_lr2": ({"ema_decay": 0.999, "lr_g": 2e-4, "lr_d": 2e-4}, {}),
    "ema_b32": ({"ema_decay": 0.999, "batch_size": 32}, {}),
    "ema_b8": ({"ema_decay": 0.999, "batch_size": 8}, {}),
    "ema_g16": ({"ema_decay": 0.999}, {"g_ch": 16}),
    "ema_d4": ({"ema_decay": 0.999}, {"d_ch": 4}),
    "paper_opt": ({"lr_g": 1e-4, "lr_d": 1e-4, "beta1": 0.5}, {}),
    "cw4": ({"contrastive_weight": 4.0}, {}),
    "generated": ({"d2s_source": "generated"}, {}),  # the SupCon losses' two readings of f(x_i) in the G step
    "paired_real": ({"d2s_source": "paired_real"}, {}),
}
#: G-step numerator shares averaged over the last steps of each point (log.csv columns)
SHARE_STEPS = 100


def _setup(args, out: Path):
    """Embeddings of the held-out and training clips (cached in `out`), the probe and its ceiling."""
    from occ.data import datasets
    from occ.metrics import embedding_files
    from occ.config import load_params
    from occ.metrics.embeddings import embed_clips, get_embedder
    from occ.paths import Layout
    from occ.metrics.probe import fit_probe

    layout = Layout.find()
    params = load_params(layout.params, variant=args.variant)
    cache = datasets.load_feature_cache(layout.data(params.data.cache))
    embedder = get_embedder(params.eval.embedding, weights=params.eval.vggish_weights or None)
    train_part = cache.train()
    if params.eval.probe_clips_per_class:  # the reference stage's choice: the first clips of each class
        train_part = train_part.first_per_class(params.eval.probe_clips_per_class)
    parts = {"heldout": dict(part=cache.heldout(), what="held-out"),
             f"train{params.eval.probe_clips_per_class or ''}": dict(part=train_part, what="training"),
             "heldout_vocoded": dict(part=cache.heldout(), what="held-out",
                                     through_vocoder={"vocoder": params.eval.vocoder, "gl_iters": params.eval.gl_iters})}
    emb = {}
    for name, kw in parts.items():
        path = out / f"embeddings_{name}_{params.eval.embedding}.npz"
        if not path.is_file():
            embedding_files.save_embeddings(path, embed_clips(embedder=embedder, **kw))
        emb[name] = embedding_files.load_embeddings(path)
    probe = fit_probe(emb[f"train{params.eval.probe_clips_per_class or ''}"])
    probe.save(out / f"probe_{params.eval.embedding}.npz")
    ceiling = {"held-out": float(probe.accuracy(emb["heldout"])["Average"]),
               "held-out via vocoder": float(probe.accuracy(emb["heldout_vocoded"])["Average"]),
               "training": probe.train_accuracy}
    return ceiling


PER_BIN_CLIP = 3.0  # standard deviations mapped to +-1 (SpecGAN)


def per_bin_stats(log_mels):
    """Mean and standard deviation of every mel bin over the clips and frames, each ``(80, 1)``."""
    import torch

    m = torch.as_tensor(log_mels, dtype=torch.float64)
    m = m.reshape(-1, *m.shape[-2:]).transpose(0, 1).reshape(m.shape[-2], -1)  # (bins, clips * frames)
    return m.mean(1, keepdim=True).float(), m.std(1, keepdim=True).clamp_min(1e-3).float()


def per_bin_normalize(log_mels, mean, std):
    """Log-mels -> [-1, 1], per bin: ``clip((m - mean) / (3 std), -1, 1)``."""
    import torch

    return ((torch.as_tensor(log_mels) - mean) / (PER_BIN_CLIP * std)).clamp(-1.0, 1.0)


def _per_bin_output(g, mean, std):
    """G whose output is mapped back from per-bin space to the global [-1, 1] space the evaluation reads."""
    import torch

    from occ.data.datasets import normalize_mel

    class PerBinOutput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.g, self.z_dim, self.n_classes = g, g.z_dim, g.n_classes
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def forward(self, z, y):
            return normalize_mel(self.g(z, y) * (PER_BIN_CLIP * self.std) + self.mean)

    return PerBinOutput().eval()


def _worker(args, recipe: str, out: Path) -> None:
    """Train and evaluate one recipe and seed through the step counts; one JSON line per point in
    `out/<variant>-<recipe>-seed<seed>.jsonl`."""
    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    from occ.data import datasets
    from occ.metrics import confusion, embedding_files, evaluate
    from occ.nets import models
    from occ.train import gan_train
    from occ.config import SUPCON_KINDS, load_params
    from occ.metrics.embeddings import get_embedder
    from occ.paths import Layout
    from occ.metrics.probe import load_probe

    layout = Layout.find()
    params = load_params(layout.params, variant=args.variant)
    cache = datasets.load_feature_cache(layout.data(params.data.cache))
    train = cache.train()
    embedder = get_embedder(params.eval.embedding, weights=params.eval.vggish_weights or None)
    reference = embedding_files.load_embeddings(out / f"embeddings_heldout_{params.eval.embedding}.npz")
    probe = load_probe(out / f"probe_{params.eval.embedding}.npz")
    encoder_path = layout.supcon_run / "encoder.pt"
    encoder = models.load_encoder(encoder_path) if encoder_path.is_file() else None
    if params.train.loss in SUPCON_KINDS and encoder is None:
        raise SystemExit(f"{encoder_path}: missing; run `dvc repro supcon` first")
    train_over, model_over, *rest = RECIPES[recipe]
    per_bin = bool(rest) and rest[0].get("mel_norm") == "per_bin"
    if per_bin:
        mean, std = per_bin_stats(train.mels)
        x_train = per_bin_normalize(train.mels, mean, std)
    else:
        x_train = datasets.normalize_mel(train.mels)
    model = dataclasses.replace(params.model, **model_over)
    run_dir = out / args.variant / f"{recipe}-seed{args.seed}"
    log_path = out / f"{args.variant}-{recipe}-seed{args.seed}.jsonl"
    cpu_total = wall_total = 0.0
    for steps in (int(s) for s in args.steps.split(",")):
        cfg = dataclasses.replace(params.train, steps=steps, **train_over)
        c0, w0 = time.process_time(), time.perf_counter()
        gan_train.train_gan(x_train, train.labels, n_classes=len(cache.class_names),
                            model=model, train=cfg, out_dir=run_dir, seed=args.seed,
                            encoder=encoder if params.train.loss in SUPCON_KINDS else None,
                            class_names=cache.class_names, progress=False)
        cpu_total += time.process_time() - c0
        wall_total += time.perf_counter() - w0
        g, payload = models.load_generator(run_dir / "checkpoint.pt")
        if per_bin:
            g = _per_bin_output(g, mean, std)
        e0 = time.perf_counter()
        res = evaluate.evaluate_generator(g, class_names=cache.class_names, n_per_class=args.n_per_class,
                                          base_seed=params.seed, embedder=embedder, reference=reference,
                                          vocoder=params.eval.vocoder, gl_iters=params.eval.gl_iters, n_bootstrap=0,
                                          prdc_k=params.eval.prdc_k, encoder=encoder, probe=probe)
        conf = confusion.probe_confusion(probe, res.embeddings)
        measures = confusion.confusion_metrics(conf)
        log = pd.read_csv(run_dir / gan_train.LOG_NAME)
        last = log[log["step"] > int(payload["step"]) - SHARE_STEPS]
        row = {"variant": args.variant, "recipe": recipe, "seed": args.seed, "steps": int(payload["step"]),
               "cpu_s": round(cpu_total, 1), "wall_s": round(wall_total, 1), "threads": args.threads,
               "probe": float(res.probe["Average"]), "fad": float(res.fad.loc["Average", "fad"]),
               "encoder": res.accuracy, "eval_s": round(time.perf_counter() - e0, 1),
               "mi_bits": measures["probe_mi_bits"], "mi_null95": measures["probe_mi_null95"],
               "relabelled": measures["probe_relabelled_accuracy"],
               "own_label_classes": measures["probe_own_label_classes"],
               "reading": confusion.reading(measures["probe_mi_bits"], measures["probe_mi_null95"],
                                            measures["probe_own_label_classes"], len(cache.class_names)),
               "g_class_share": _mean_or_none(last["g_class_share"]),
               "g_source_share": _mean_or_none(last["g_source_share"]),
               "probe_per_class": {k: float(v) for k, v in res.probe.items()}}
        with open(log_path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def _mean_or_none(values) -> float | None:
    """The mean of a log column, ``None`` where the loss has no such term (NaN)."""
    values = values.dropna()
    return float(values.mean()) if len(values) else None


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _table(rows: list[dict]) -> str:
    lines = ["| recipe | seed | steps | train CPU s | train wall s | probe acc. | MI, bits (shuffled 95th pct.) | "
             "relabelled acc. | own-label classes | mean FAD | encoder acc. | G class share | G source share |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mi = f"{r['mi_bits']:.2f} ({r['mi_null95']:.2f})" if "mi_bits" in r else "-"
        lines.append(f"| {r['recipe']} | {r['seed']} | {r['steps']} | {r['cpu_s']:.0f} | {r['wall_s']:.0f} | "
                     f"{r['probe']:.2f} | {mi} | {_num(r.get('relabelled'), '.2f')} | "
                     f"{_num(r.get('own_label_classes'), 'd')} | {r['fad']:.1f} | {_num(r['encoder'], '.2f')} | "
                     f"{_num(r.get('g_class_share'), '.3f')} | {_num(r.get('g_source_share'), '.3f')} |")
    return "\n".join(lines)


#: measures of the paired comparison: row key, name, format
COMPARED = (("probe", "probe accuracy", ".3f"), ("mi_bits", "mutual information, bits", ".2f"),
            ("relabelled", "accuracy under the best relabelling", ".3f"), ("fad", "mean FAD", ".1f"),
            ("g_class_share", "G's class-term share (last 100 steps)", ".3f"))


def comparison(rows: list[dict], first: str, second: str) -> str:
    """Per seed, both recipes' measures at the last step count, and the paired 95 % t interval of second - first."""
    from occ.report.intervals import paired_comparison

    steps = max(r["steps"] for r in rows)
    at = {(r["recipe"], r["seed"]): r for r in rows if r["steps"] == steps}
    seeds = sorted({s for (rec, s) in at if rec == first} & {s for (rec, s) in at if rec == second})
    lines = [f"At {steps} steps, seeds {', '.join(map(str, seeds))}; difference = {second} - {first}, paired over "
             "seeds, with its 95 % t interval.", "",
             f"| measure | {first} by seed | {second} by seed | difference [95 % interval] |", "|---|---|---|---|"]
    for key, name, fmt in COMPARED:
        a = {s: at[(second, s)].get(key) for s in seeds}
        b = {s: at[(first, s)].get(key) for s in seeds}
        if any(v is None for v in (*a.values(), *b.values())):
            continue
        p = paired_comparison(a, b, paper_side="greater")
        side = ("higher" if p.low > 0 else "lower" if p.high < 0 else "not established") if p.n >= 2 else "-"
        lines.append(f"| {name} | {', '.join(format(b[s], fmt) for s in seeds)} | "
                     f"{', '.join(format(a[s], fmt) for s in seeds)} | {p.mean:+{fmt}} [{p.low:+{fmt}}, "
                     f"{p.high:+{fmt}}] ({side}) |")
    return "\n".join(lines)


def _plot(rows: list[dict], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    several_seeds = len({r["seed"] for r in rows}) > 1
    for recipe, seed in dict.fromkeys((r["recipe"], r["seed"]) for r in rows):
        pts = sorted((r for r in rows if (r["recipe"], r["seed"]) == (recipe, seed)), key=lambda r: r["steps"])
        x = [r["cpu_s"] for r in pts]
        label = f"{recipe}, seed {seed}" if several_seeds else recipe
        a.plot(x, [r["probe"] for r in pts], "o-", label=label)
        b.plot(x, [r["fad"] for r in pts], "o-", label=label)
    a.set(xlabel="training CPU-seconds", ylabel="probe accuracy on generated clips", title="recognisability")
    b.set(xlabel="training CPU-seconds", ylabel="mean FAD", title="FAD (lower is better)")
    a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="o2c")
    ap.add_argument("--recipes", default="no_ema,current", help="comma-separated, of: " + ", ".join(RECIPES))
    ap.add_argument("--steps", default="400,800,1600", help="comma-separated step counts, evaluated in turn")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds, each trained for every recipe")
    ap.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)  # one worker's seed
    ap.add_argument("--n-per-class", type=int, default=40)
    ap.add_argument("--jobs", type=int, default=2, help="runs (recipe, seed) trained side by side, one process each")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per job (default: 2 // jobs, at least 1)")
    ap.add_argument("--out", default="runs/learning_curve")
    ap.add_argument("--png", default=None, help="figure path (default: <out>/learning_curve_<variant>.png)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads is None:
        args.threads = max(1, 2 // max(1, args.jobs))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        _worker(args, args.worker, out)
        return
    recipes = args.recipes.split(",")
    for r in recipes:
        if r not in RECIPES:
            raise SystemExit(f"--recipes: unknown recipe {r!r}; known: {', '.join(RECIPES)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds: {args.seeds!r} is not a comma-separated list of whole numbers") from None
    sys.path.insert(0, str(Path(__file__).parent))
    from lever_common import cpu_facts

    f = cpu_facts()
    cpu = f"{f['model']} (family {f['family']}, model {f['model_number']})"
    ceiling = _setup(args, out)
    print(f"CPU: {cpu}; {args.jobs} job(s) x {args.threads} thread(s)")
    print("probe ceiling: " + ", ".join(f"{k} {v:.3f}" for k, v in ceiling.items()), flush=True)
    runs = [(r, s) for s in seeds for r in recipes]
    for r, s in runs:
        (out / f"{args.variant}-{r}-seed{s}.jsonl").unlink(missing_ok=True)
    base = [sys.executable, __file__, "--variant", args.variant, "--steps", args.steps,
            "--n-per-class", str(args.n_per_class), "--threads", str(args.threads), "--out", str(out)]
    pending = list(runs)
    running: list[subprocess.Popen] = []
    while pending or running:
        while pending and len(running) < args.jobs:
            recipe, seed = pending.pop(0)
            running.append(subprocess.Popen(base + ["--seed", str(seed), "--worker", recipe]))
        time.sleep(1.0)
        for p in list(running):
            if p.poll() is not None:
                running.remove(p)
                if p.returncode:
                    raise SystemExit(f"a recipe's worker failed (exit {p.returncode}); see its output above")
    rows = []
    for r, s in runs:
        rows += [json.loads(ln) for ln in open(out / f"{args.variant}-{r}-seed{s}.jsonl")]
    print(_table(rows))
    if len(recipes) == 2 and len(seeds) >= 2:
        text = comparison(rows, *recipes)
        (out / f"compare_{args.variant}.md").write_text(f"{args.variant} ({cpu}; {args.jobs} job(s) x "
                                                        f"{args.threads} thread(s))\n\n{text}\n")
        print(text)
    png = Path(args.png) if args.png else out / f"learning_curve_{args.variant}.png"
    _plot(rows, png, title=f"{args.variant}, seeds {args.seeds}, {args.n_per_class} clips/class ({cpu})")
    print(f"figure: {png}")


if __name__ == "__main__":
    main()
