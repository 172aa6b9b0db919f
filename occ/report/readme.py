"""`results/README.md`: the readings that made the run, the verdicts with their intervals (how many of the eight
claims were reproduced, one sentence per claim and per pooled row), then the checks and tables.

Written by the tables stage from the tables it has just computed; every table appears in its Markdown view
(`occ.report.markdown.readable`), so the README and `results/tables/*.md` always agree.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from occ.report.checks import CLIPS_NOTE, recognisable_sentences
from occ.report.claims import VERDICT_MEANING
from occ.report.markdown import readable, to_markdown
from occ.report.paper import PAPER_D_PROJECTION, d_reading, in_variant_order, model_name
from occ.report.results import model_names, variant_settings
from occ.report.shares import LAST_STEPS, share_sentences
from occ.report.tables import CLIP_BOOTSTRAP_NOTE

__all__ = ["results_readme", "source_readings"]


def source_readings(metrics: Mapping[str, Mapping[int, Mapping]]) -> dict[str, str]:
    """variant -> the reading of the source term of generated clips (``d2s_source``) its runs recorded, for the
    variants whose loss has a source term (the SupCon kinds; `occ.report.results.variant_settings`)."""
    return {v: s["d2s_source"] for v, s in variant_settings(metrics).items() if "d2s_source" in s}


def _d_sentence(metrics: Mapping[str, Mapping[int, Mapping]]) -> list[str]:
    """The paragraph naming the D reading each model ran with (no runs: no lines), each model named by its loss,
    temperatures and source reading (the controls by their own names, which say it)."""
    settings = variant_settings(metrics)
    if not settings:
        return []
    named = "; ".join(f"{model_name(_without_d(settings[v]))} `{d_reading(settings[v])}`"
                      for v in in_variant_order(settings))
    return ["", "The label in D (`train.d_projection`, docs/recipe.md \"The label in D\"): " + named + ". \"label in "
            "D\", the projection term in D2, is Eq. (1) read literally (D(x_i, c_i): D judges real and generated "
            "spectrograms \"using label information\"); \"D without label\" is StudioGAN's ContraGAN, whose D2 ignores "
            "the class. The hinge-only control keeps a D without the label: no part of it sees the class."]


def _without_d(settings: Mapping) -> dict:
    """Settings whose name leaves the D reading out: a contrastive model's at the paper's reading (a control's
    unchanged, its name is its D reading)."""
    return dict(settings) if settings["loss"] == "none" else {**settings, "d_projection": PAPER_D_PROJECTION}


def _claim_lines(verdicts: pd.DataFrame) -> list[str]:
    """How many of the claims (role "claim") were reproduced, one line per claim, then one per claim's pooled row."""
    if verdicts.empty:
        return []
    claims = verdicts[verdicts["role"] == "claim"]
    counts = claims["verdict"].value_counts()
    pooled = verdicts[[key.endswith("_pooled") for key in verdicts.index]]
    return [f"{counts.get('reproduced', 0)} of {len(claims)} comparisons reproduced, "
            f"{counts.get('contradicted', 0)} contradicted, {counts.get('not established', 0)} not established.", "",
            *[f"- {r.claim}: {r.reading}" for r in claims.itertuples()], "",
            "Each claim pooled over both families (the paired differences of both pairs of models, two per seed):", "",
            *[f"- {r.claim}: {r.reading} ({r.verdict})" for r in pooled.itertuples()], "",
            "The split rows (role \"split\") say whether a difference comes from sound (label-free FAD) or labels "
            "(the probe); their sentences are in `tables/claims.csv`."]


def _source_sentence(metrics: Mapping[str, Mapping[int, Mapping]]) -> list[str]:
    """The paragraph naming the source reading each SupCon model ran with (none: no lines). Each model is named by
    its loss and temperatures (`occ.report.paper.model_name` without the source and D readings), then the reading."""
    settings = variant_settings(metrics)
    sources = source_readings(metrics)
    if not sources:
        return []
    named = "; ".join(f"{model_name(_without_d({k: x for k, x in settings[v].items() if k != 'd2s_source'}))} `{s}`"
                      for v, s in sources.items())
    return ["", "The source term of generated clips (`train.d2s_source`, docs/reference.md section 6, \"The source "
            "term of generated clips\"): " + named + ". `paired_real`, f of the step's real clip whose class the "
            "generated clip takes, is the paper's wording (Eq. (4) writes f(x_i) of the real clip x_i; the same label "
            "c_i conditions G and D); `generated`, f of the generated clip itself, is the other reading. "
            "docs/recipe.md gives the measurement that chose it."]


def results_readme(verdicts: pd.DataFrame, checks: pd.DataFrame, clips: pd.DataFrame, t1: pd.DataFrame,
                   t2: pd.DataFrame, t3: pd.DataFrame, *, label: str, params, metrics: Mapping[str, Mapping[int, dict]] | None = None,
                   chance: float | None = None, tsne_seed: int | None = None,
                   shares: pd.DataFrame | None = None, probes: pd.DataFrame | None = None) -> str:
    """`results/README.md`: the verdicts with their intervals first, one sentence per claim, then the tables.

    Parameters
    ----------
    verdicts, checks, clips : pandas.DataFrame
        `occ.report.claims.claims_table(...)`, `occ.report.checks.checks_table(...)` and
        `occ.report.checks.clips_table(...)` (may be empty: then its section is left out).
    t1, t2, t3 : pandas.DataFrame
        `occ.report.tables.table1`, `table2`, `table3`.
    label : str
        This run's label.
    params : occ.config.Params
        The run's parameters (profile, data, train, model, eval).
    metrics : dict, optional
        variant -> seed -> metrics, to say how many seeds each variant ran, which D reading their runs recorded and,
        for the losses with a source term, which reading of it.
    chance : float, optional
        1 / number of classes, shown in Table 1's probe-accuracy header.
    tsne_seed : int, optional
        The seed whose runs Figure 2 shows.
    shares : pandas.DataFrame, optional
        `occ.report.shares.share_table(...)`: one sentence per model on what its contrastive numerator is made of.
    probes : pandas.DataFrame, optional
        `occ.report.checks.probe_comparisons(...)`: each model's probe accuracy against chance and the paired
        control, shown above the clips table.
    """
    ran = {v: runs for v, runs in (metrics or {}).items() if runs}
    counts = {v: len(runs) for v, runs in ran.items()}
    names = model_names(ran)
    lines = [
        "# Results of the last `dvc repro`",
        "",
        "Everything in this folder is written by the pipeline (`dvc repro`); nothing is edited by hand.",
        f"Run: profile `{params.profile}`, data `{params.data.source}` ({params.data.layout} layout), "
        f"{params.train.steps} GAN steps per run at batch {params.train.batch_size}, "
        f"generator width {params.model.g_ch}, discriminator width {params.model.d_ch}, "
        f"{params.eval.clips_per_class} generated clips per class, vocoder `{params.eval.vocoder}`, "
        f"FAD embedding `{params.eval.embedding}`. {_seed_sentence(counts, names)}",
        *_d_sentence(ran),
        *_source_sentence(ran),
        "",
        "## The paper's claims, decided over seeds",
        "",
        "Each claim is a paired comparison: the two models trained from the same seed are compared, and the "
        "differences (first-named model minus second) are averaged over the seeds. " + VERDICT_MEANING,
        "",
        to_markdown(readable(verdicts, label=label)),
        *_claim_lines(verdicts),
        "",
        "The paper's third comparison, both CT 1.0 models against the DCASE baseline (Table 3), is not tested: "
        "the baseline is not trained here; its reported numbers are shown beside ours.",
        "",
        "## Is the training real?",
        "",
        "Each run's step-0 generator is the untrained generator that its seed's training starts from, so trained and "
        "step-0 FAD are compared as a pair per seed. Recognisability is the accuracy of an independent linear probe "
        "on the generated clips, against chance (one over the number of classes) and against the paired control "
        "(hinge only, the same seed)."
        + (" Profile `paper` also asks for a trained FAD at most half of step 0." if params.profile == "paper" else ""),
        "",
        to_markdown(readable(checks, label=label)),
        *([] if clips.empty else ["### What each run's clips are (per seed)", "", CLIPS_NOTE, "",
                                  *([] if probes is None or probes.empty else [
                                      to_markdown(readable(probes, label=label, chance=chance))]),
                                  to_markdown(readable(clips, label=label)),
                                  *[f"- {sentence}" for sentence in recognisable_sentences(clips)], ""]),
        *([] if shares is None or shares.empty else [
            "### What ties the clips to their labels", "",
            "In G's contrastive numerator, the anchors of the class asked for tie a clip to its label: the class term "
            "d2c, and the source term d2s where it is f of a real clip of that class (`train.d2s_source: "
            "paired_real`). Their share of the numerator is the label-anchored share (log column `g_label_share`); "
            "by the loss's gradient the pull toward them weighs tau_d / tau_c times that share against the push "
            "from the other samples, the pull-to-push weight (`g_pull_push`). The rest (same-class generated clips "
            "in 2C and C-SupCon, the source term under `generated`) can be satisfied under any label. Where D reads "
            "the label, its adversarial term ties the clips to their labels as well. Over each run's last "
            f"{LAST_STEPS} steps, mean over seeds (`tables/shares.md`; against the step: "
            "`figures/numerator_shares.png`):", "",
            *[f"- {sentence}" for sentence in share_sentences(shares)], ""]),
        "## Table 1: mean FAD and recognisability, over seeds",
        "",
        f"The paper's numbers are FAD on the DCASE 2023 evaluation set with VGGish; this run's are {label}. "
        "Absolute values are not comparable between the two; the orderings are what a reproduction can test. "
        "Cells are mean ± half-width of the 95% interval over seeds (Student t); the per-seed values are in the CSV.",
        "",
        to_markdown(readable(t1, label=label, chance=chance)),
        CLIP_BOOTSTRAP_NOTE,
        "",
        f"## Table 2: per-class FAD{_temperatures(t2)}",
        "",
        to_markdown(readable(t2, label=label)),
        "## Table 3: per-class FAD beside the DCASE baseline",
        "",
        to_markdown(readable(t3, label=label)),
        "Tables: `tables/table1.md`, `tables/table2.md`, `tables/table3.md` (CSV beside them, full precision and "
        "the per-seed values; `tables/claims.csv`, `tables/checks.csv`, `tables/clips.csv`). Figures: `figures/fad_by_seed.png` (every "
        "seed's FAD per model beside the paper's), `figures/probe_by_seed.png`, "
        "`figures/d_loss_with_without_occ.png` (mean over seeds with a band), `figures/numerator_shares.png`, "
        "`figures/figure1_push_pull.png`, `figures/figure2_tsne.png` (one seed per "
        f"model{'' if tsne_seed is None else f', seed {tsne_seed}'}; C4 above measures every seed). Per-run "
        "metrics: `evaluate/<variant>/seed<k>/metrics.json`.",
        "",
    ]
    return "\n".join(lines)


def _temperatures(t2: pd.DataFrame) -> str:
    """``", CT 0.1 vs 1.0"``: the CT values of Table 2's rows, the paper's and this run's (none: empty)."""
    values = sorted({float(ct) for ct in t2["CT"].dropna()}) if "CT" in t2 else []
    return f", CT {' vs '.join(map(repr, values))}" if values else ""


def _seed_sentence(counts: dict[str, int], names: Mapping[str, str]) -> str:
    if not counts:
        return ""
    most = max(counts.values())
    fewer = [f"{names[v]} {k}" for v, k in counts.items() if k < most]
    text = f"Every model was trained and evaluated from {most} seed{'s' if most != 1 else ''}"
    return text + (f" (fewer: {', '.join(fewer)})." if fewer else ".")
