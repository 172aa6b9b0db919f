"""Tables, claims and checks are computed over seeds from the numbers they are given, and read back as written."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from occ.config import load_params
from occ.data.classes import DCASE_CLASSES
from occ.report.checks import checks_table, clips_table
from occ.report.claims import CLAIMS, claims_table
from occ.report.dvc_metrics import RESULT_CODES, VERDICT_CODES, checks_metrics, claims_metrics
from occ.report.intervals import VERDICTS
from occ.report.markdown import readable, to_markdown, write_table
from occ.report.paper import REPORTED_BASELINE, REPORTED_LABEL, REPORTED_TABLE2
from occ.report.readme import results_readme, source_readings
from occ.errors import DataError
from occ.metrics.run_settings import run_settings_of
from occ.report.results import load_seed_runs, model_names, variant_settings
from occ.report.tables import interval_columns, table1, table1_title, table2, table3, table3_title

T_DF1 = 12.706204736174707  # t_{0.975, 1}
T_DF2 = 4.302652729749464  # t_{0.975, 2}
T_DF5 = 2.5705818356363146  # t_{0.975, 5}
LABEL = "this run (x, y)"
#: What made each variant's runs, as their metrics.json records it (the committed params.yaml's variants: loss,
#: tau_d, tau_c, d_projection).
MADE = {"contragan": ("2c", 0.1, 0.1, True), "csupcongan": ("csupcon", 0.1, 0.1, True), "o2c": ("o2c", 0.1, 0.1, True),
        "o2c_ct1": ("o2c", 0.1, 1.0, True), "ocsupcon": ("ocsupcon", 0.1, 0.1, True),
        "ocsupcon_ct1": ("ocsupcon", 0.1, 1.0, True), "hinge_only": ("none", 0.1, 0.1, False),
        "projection_cgan": ("none", 0.1, 0.1, True)}


def _settings(made):
    """What a run of ``made`` = (loss, tau_d, tau_c, d_projection) records, trained with the source reading
    params.yaml sets."""
    return run_settings_of({"loss": made[0], "tau_d": made[1], "tau_c": made[2], "d_projection": made[3],
                            "d2s_source": "paired_real"})


def _made(metrics, **changed):
    """``metrics`` with each run's settings (``MADE``, then ``changed``: variant -> {key: value}) recorded in it."""
    for v, runs in metrics.items():
        for m in runs.values():
            m.update(_settings(MADE[v]), **changed.get(v, {}))
    return metrics


def _m(fad, step0=500.0, probe=0.5, enc=0.4, spread=0.3, clip=(2.0, 5.0)):
    return {"fad_mean": fad, "fad_label_free": fad - 50.0, "fad_mean_step0": step0, "fad_mean_ci_low": fad - clip[1],
            "fad_mean_ci_high": fad - clip[0],
            "probe_accuracy": probe, "encoder_accuracy_on_generated": enc, "d_within_class_distance": spread,
            "n_classes": 7}


def _log(tail, early=2.0):
    """D's loss over 10 steps: ``early`` over the first 3 (C3's speed reads the first quarter), ``tail`` over the
    last 2 (its end level reads the last 20 %)."""
    return pd.DataFrame({"step": range(1, 11), "d_adv": [early] * 3 + [2.0] * 5 + [tail] * 2})


def _per_class(level):
    values = [level + i for i in range(7)]
    return pd.Series(values + [float(np.mean(values))], index=[*DCASE_CLASSES, "Average"])


def _params(profile="embedded"):
    return SimpleNamespace(profile=profile, data=SimpleNamespace(source="synthetic", layout="dcase"),
                           train=SimpleNamespace(steps=300, batch_size=16), model=SimpleNamespace(g_ch=8, d_ch=8),
                           eval=SimpleNamespace(clips_per_class=40, vocoder="griffinlim", embedding="aisfx"))


def test_interval_columns_by_hand():
    row = interval_columns("fad", {2: 3.0, 0: 1.0, 1: 2.0}, seeds=[0, 1, 2, 3])
    assert row["fad"] == pytest.approx(2.0) and row["fad_n"] == 3
    assert row["fad_halfwidth"] == pytest.approx(T_DF2 / math.sqrt(3))
    assert row["fad_low"] == pytest.approx(2.0 - T_DF2 / math.sqrt(3))
    assert (row["fad_seed0"], row["fad_seed1"], row["fad_seed2"]) == (1.0, 2.0, 3.0)
    assert math.isnan(row["fad_seed3"])
    one = interval_columns("x", {5: 7.0})
    assert one["x"] == 7.0 and one["x_n"] == 1 and math.isnan(one["x_low"]) and list(one)[-1] == "x_seed5"


def test_table1_over_seeds(tmp_path):
    metrics = _made({
        "o2c": {0: _m(300.0, 480.0, probe=0.4), 1: _m(310.0, 500.0, probe=0.5), 2: _m(320.0, 520.0, probe=0.6)},
        "contragan": {0: _m(350.0), 1: _m(360.0), 2: _m(340.0)},
        "hinge_only": {0: _m(330.0, probe=0.14), 1: _m(332.0, probe=0.15)},
        "o2c_ct1": {0: _m(1.0)},  # not a Table 1 model
    })
    t1 = table1(metrics).set_index("variant")
    assert list(t1.index) == ["contragan", "o2c", "hinge_only"]
    o2c = t1.loc["o2c"]
    assert o2c["fad"] == pytest.approx(310.0) and o2c["fad_halfwidth"] == pytest.approx(T_DF2 * 10 / math.sqrt(3))
    assert (o2c["fad_seed0"], o2c["fad_seed2"]) == (300.0, 320.0)
    assert o2c["fad_reported"] == 5.480 and math.isnan(t1.loc["hinge_only", "fad_reported"])
    assert o2c["fad_step0"] == pytest.approx(500.0)
    # the ratio is averaged per seed, not the ratio of the means
    assert o2c["trained_over_step0"] == pytest.approx(np.mean([300 / 480, 310 / 500, 320 / 520]))
    assert o2c["probe_accuracy"] == pytest.approx(0.5) and o2c["probe_accuracy_low"] == pytest.approx(0.5 - T_DF2 * 0.1 / math.sqrt(3))
    assert o2c["encoder_accuracy"] == pytest.approx(0.4) and o2c["encoder_accuracy_halfwidth"] == pytest.approx(0.0)
    assert o2c["clip_bootstrap_width"] == pytest.approx(3.0)
    # the control ran two seeds: its seed-2 column is empty, its interval uses t with 1 degree of freedom
    hinge = t1.loc["hinge_only"]
    assert hinge["fad_n"] == 2 and math.isnan(hinge["fad_seed2"]) and hinge["seeds"] == "0, 1"
    assert hinge["fad_halfwidth"] == pytest.approx(T_DF1 * 1.0)
    # no column presents the clip bootstrap as the model's interval
    assert not any("ci" in c.lower() for c in t1.columns)
    write_table(t1.reset_index(), tmp_path / "t1", title="T1", label=LABEL, chance=1 / 7)
    csv = pd.read_csv(tmp_path / "t1.csv")
    assert csv.shape == t1.reset_index().shape and csv.loc[1, "fad_seed1"] == 310.0
    md = (tmp_path / "t1.md").read_text()
    assert md.startswith("# T1") and "| O2C-GAN |" in md and "FAD, this run (x, y)" in md
    assert f"310.0 ± {T_DF2 * 10 / math.sqrt(3):.1f}" in md  # 310.0 ± 24.8
    assert "_seed" not in md and "chance 0.143" in md and "clip_bootstrap" not in md


def test_one_seed_has_no_interval():
    t1 = table1(_made({"o2c": {4: _m(300.0)}}))
    assert t1.loc[0, "fad_n"] == 1 and math.isnan(t1.loc[0, "fad_low"]) and "fad_seed4" in t1
    assert readable(t1).iloc[0]["FAD, this run"] == "300.000 (1 seed)"
    # a metric no run wrote (here the probe) is not shown as an empty column
    no_probe = {0: {k: v for k, v in _m(300.0).items() if k != "probe_accuracy"}}
    cols = list(readable(table1(_made({"o2c": no_probe}))).columns)
    assert "encoder accuracy" in cols and not any(c.startswith("probe") for c in cols)


def test_readable_rounds_for_reading():
    df = pd.DataFrame([{"model": "m", "fad": 332.04, "fad_low": 319.74, "fad_high": 344.34, "fad_halfwidth": 12.3,
                        "fad_n": 3, "fad_seed0": 1.0, "difference": -4.12, "difference_low": -9.11,
                        "difference_high": 0.87, "difference_halfwidth": 4.99, "difference_n": 3,
                        "variant": "o2c", "reading": "x"}])
    r = readable(df, label="L")
    assert list(r.columns) == ["model", "FAD, L", "mean paired difference [95% CI]"]
    assert r.iloc[0]["FAD, L"] == "332.0 ± 12.3"
    assert r.iloc[0]["mean paired difference [95% CI]"] == "-4.1 [-9.1, 0.9]"
    small = df.assign(fad=0.6812, fad_halfwidth=0.0213)
    assert readable(small).iloc[0]["FAD, this run"] == "0.681 ± 0.021"


def _claim_inputs():
    # o2c beats contragan on every seed (C1: reproduced); ocsupcon loses to csupcongan on every seed
    # (contradicted); the CT pairs tie (not established); D-loss and spread as the paper says for the O2C pair.
    metrics = _made({
        "contragan": {0: _m(350.0, spread=0.20), 1: _m(361.0, spread=0.21), 2: _m(340.0, spread=0.19)},
        "o2c": {0: _m(340.0, spread=0.30), 1: _m(350.0, spread=0.32), 2: _m(331.0, spread=0.29)},
        "csupcongan": {0: _m(300.0), 1: _m(310.0), 2: _m(320.0)},
        "ocsupcon": {0: _m(320.0), 1: _m(331.0), 2: _m(339.0)},
        "o2c_ct1": {0: _m(339.0), 1: _m(351.0), 2: _m(331.0)},
        "ocsupcon_ct1": {0: _m(319.0), 1: _m(332.0), 2: _m(339.0)},
    })
    logs = {"contragan": {s: _log(0.5 + 0.01 * s, early=1.0 + 0.01 * s) for s in range(3)},
            "o2c": {s: _log(0.9 + 0.02 * s, early=1.5 + 0.02 * s) for s in range(3)},
            "csupcongan": {s: _log(0.8) for s in range(3)}}
    return metrics, logs


def test_claims_are_paired_comparisons_over_seeds():
    metrics, logs = _claim_inputs()
    c = claims_table(metrics, logs)
    assert set(c["verdict"]) <= set(VERDICTS) and set(c["role"]) == {"claim", "split", "pooled"}
    claims = c[c["role"] == "claim"]
    assert list(claims.index) == [f"{cid}_{a}_vs_{b}" for cid, a, b, _, _ in CLAIMS]  # the eight, first
    by = {row.claim: row for row in claims.itertuples()}
    c1 = by["C1 OCC lowers FAD: O2C-GAN < ContraGAN (2C)"]
    # differences -10, -11, -9: mean -10, s = 1, half-width t_{0.975,2} / sqrt(3)
    assert c1.difference == pytest.approx(-10.0) and c1.detectable_difference == pytest.approx(T_DF2 / math.sqrt(3))
    assert c1.n_seeds == 3 and c1.paired_seeds == "0, 1, 2" and c1.verdict == "reproduced"
    assert c1.paper == "5.480 < 12.667 (Table 1)" and "as the paper reports" in c1.reading
    assert "over 3 seeds" in c1.reading
    c1b = by["C1 OCC lowers FAD: OC-SupConGAN < C-SupConGAN (C-SupCon)"]
    assert c1b.difference == pytest.approx(20.0) and c1b.verdict == "contradicted"
    assert "opposite" in c1b.reading
    c2 = by["C2 tau_c 1.0 beats 0.1: O2C-GAN, CT 1.0 < O2C-GAN"]  # differences -1, 1, 0
    assert c2.difference == pytest.approx(0.0) and c2.verdict == "not established"
    assert f"±{T_DF2 / math.sqrt(3):.3g}" in c2.reading
    c3 = by["C3 without OCC D's adversarial loss falls faster: ContraGAN (2C) < O2C-GAN"]
    # d_loss_early: the first quarter of the steps, where D's loss is 1.0 + 0.01 s against 1.5 + 0.02 s
    assert c3.difference == pytest.approx(-0.51) and c3.verdict == "reproduced"
    c3b = by["C3 without OCC D's adversarial loss falls faster: C-SupConGAN (C-SupCon) < OC-SupConGAN"]
    assert c3b.n_seeds == 0 and c3b.verdict == "not established" and "nothing decided" in c3b.reading
    c4 = by["C4 OCC spreads same-class embeddings in D's space: O2C-GAN > ContraGAN (2C)"]
    assert c4.difference == pytest.approx(0.1033333) and c4.verdict == "reproduced"
    assert "higher" in c4.reading
    # splits: C3's end level (the last 20 %: 0.5 + 0.01 s against 0.9 + 0.02 s), C1's label-free FAD and probe
    end = c.loc["C3_contragan_vs_o2c_d_loss"]
    assert end["claim"] == "C3 split by D's loss over the last 20 % of steps: ContraGAN (2C) < O2C-GAN"
    assert c.loc["C1_o2c_vs_contragan_probe", "claim"] == "C1 split by probe accuracy: O2C-GAN > ContraGAN (2C)"
    assert c.loc["C1_pooled_probe", "claim"] == ("C1 split by probe accuracy: with OCC > without OCC, both families "
                                                 "pooled")
    assert end["role"] == "split" and end["difference"] == pytest.approx(-0.41) and end["verdict"] == "reproduced"
    assert c.loc["C1_o2c_vs_contragan_fad_label_free", "difference"] == pytest.approx(-10.0)
    assert c.loc["C1_o2c_vs_contragan_probe", "difference"] == pytest.approx(0.0)
    assert not any(k.startswith("C4_") and k.endswith(("_probe", "_d_loss")) for k in c.index)
    # pooled: C1 over both families, six pairs (-10, -11, -9 and 20, 21, 19), the t interval with 5 degrees of freedom
    pooled = c.loc["C1_pooled"]
    diffs = [-10.0, -11.0, -9.0, 20.0, 21.0, 19.0]
    mean = sum(diffs) / 6
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 5)
    assert pooled["role"] == "pooled" and pooled["n_seeds"] == 6 and pooled["difference"] == pytest.approx(5.0)
    assert pooled["difference_halfwidth"] == pytest.approx(T_DF5 * sd / math.sqrt(6))
    assert pooled["verdict"] == "not established" and "over 6 pairs" in pooled["reading"]
    assert "seeds" not in pooled["reading"]
    assert pooled["paired_seeds"] == "2C s0, 2C s1, 2C s2, C-SupCon s0, C-SupCon s1, C-SupCon s2"
    assert c.loc["C3_pooled", "n_seeds"] == 3 and c.loc["C3_pooled", "difference"] == pytest.approx(-0.51)
    assert {"C1_pooled_fad_label_free", "C1_pooled_probe", "C2_pooled", "C3_pooled_d_loss", "C4_pooled"} \
        <= set(c[c["role"] == "pooled"].index)
    assert "role" in readable(c).columns


def test_pooled_c2_names_the_class_temperatures_the_runs_used():
    metrics, logs = _claim_inputs()
    assert ": CT 1.0 < CT 0.1, both" in claims_table(metrics, logs).loc["C2_pooled", "claim"]
    for seed in range(3):  # an ablation at CT 0.5 for O2C-GAN only: the pooled row names both
        metrics["o2c_ct1"][seed]["tau_c"] = 0.5
    claim = claims_table(metrics, logs).loc["C2_pooled", "claim"]
    assert claim.endswith(": CT 0.5 / 1.0 < CT 0.1, both families pooled")


def test_claims_use_only_common_seeds():
    metrics, logs = _claim_inputs()
    metrics["o2c"] = {0: metrics["o2c"][0], 1: metrics["o2c"][1], 5: _made({"o2c": {5: _m(1.0)}})["o2c"][5]}
    c1 = claims_table(metrics, logs).iloc[0]
    assert c1.n_seeds == 2 and c1.paired_seeds == "0, 1"
    assert c1.difference == pytest.approx(-10.5) and c1.detectable_difference == pytest.approx(T_DF1 * 0.5)
    # differences -10, -11: s = sqrt(1/2), sem = 1/2, interval -10.5 ± 6.35 = [-16.85, -4.15]
    assert c1.difference_high == pytest.approx(-10.5 + T_DF1 * 0.5) and c1.verdict == "reproduced"
    # with seeds 0 and 1 at -10 and +1 the interval (-4.5 ± 69.9) contains 0
    metrics["o2c"][1] = _made({"o2c": {1: _m(362.0)}})["o2c"][1]
    assert claims_table(metrics, logs).iloc[0].verdict == "not established"


def test_checks_training_is_real_and_recognisable():
    metrics = _made({
        "o2c": {s: _m(300.0 + s, 480.0 + s, probe=0.5 + 0.01 * s) for s in range(3)},
        "contragan": {s: _m(500.0 + s, 480.0, probe=0.14 + 0.01 * (s - 1)) for s in range(3)},  # worse than step 0
        "ocsupcon": {0: _m(300.0, probe=0.05), 1: _m(301.0, probe=0.06), 2: _m(302.0, probe=0.055)},
        "hinge_only": {0: _m(330.0, probe=0.13), 1: _m(331.0, probe=0.15)},
    })
    c = checks_table(metrics).set_index("check")
    assert c.loc["training is real: O2C-GAN FAD below its step-0 FAD", "result"] == "passed"
    assert c.loc["training is real: O2C-GAN FAD below its step-0 FAD", "value"] == pytest.approx(-180.0)
    assert c.loc["training is real: ContraGAN (2C) FAD below its step-0 FAD", "result"] == "failed"
    assert c.loc["recognisable: O2C-GAN probe accuracy above chance", "result"] == "passed"
    assert c.loc["recognisable: ContraGAN (2C) probe accuracy above chance", "result"] == "not established"
    assert c.loc["recognisable: OC-SupConGAN probe accuracy above chance", "result"] == "failed"
    hinge = c.loc["recognisable: hinge only (control, no contrastive term) probe accuracy (control: expected at chance)"]
    assert hinge["result"].startswith("expected at chance") and "never see the class" in hinge["result"]
    assert hinge["criterion"].startswith("no pass/fail")
    assert "not a failure" in hinge["reading"] and "contains" in hinge["reading"]
    assert not any("at most half" in k for k in c.index)
    paper = checks_table(metrics, profile="paper").set_index("check")
    assert paper.loc["training is real: O2C-GAN FAD at most half its step-0 FAD", "result"] == "failed"  # 0.625
    half = checks_table(_made({"o2c": {s: _m(200.0 + s, 480.0) for s in range(3)}}), profile="paper").set_index("check")
    assert half.loc["training is real: O2C-GAN FAD at most half its step-0 FAD", "result"] == "passed"
    # one seed decides nothing
    one = checks_table(_made({"o2c": {0: _m(100.0, 500.0, probe=0.9)}}))
    assert set(one["result"]) == {"not established"}


def test_tables_2_and_3_per_class_over_seeds(tmp_path):
    per_class = {"o2c": {0: _per_class(300.0), 1: _per_class(310.0), 2: _per_class(320.0)},
                 "o2c_ct1": {0: _per_class(100.0), 1: _per_class(100.0)}}
    step0 = {"o2c": {s: _per_class(500.0) for s in range(3)}}
    made = _made({v: {s: {} for s in runs} for v, runs in per_class.items()})
    t2 = table2(per_class, label=LABEL, per_class_step0=step0, metrics=made)
    rows = t2[t2["method"] == "O2C-GAN"]
    assert list(rows["numbers"]) == [REPORTED_LABEL, LABEL, "untrained G (step 0)", "trained / step 0",
                                     REPORTED_LABEL, LABEL]
    trained = rows.iloc[1]
    assert trained["DogBark"] == pytest.approx(310.0) and trained["DogBark_halfwidth"] == pytest.approx(T_DF2 * 10 / math.sqrt(3))
    assert trained["Average"] == pytest.approx(313.0) and trained["Average_seed2"] == pytest.approx(323.0)
    assert rows.iloc[0]["Average"] == REPORTED_TABLE2["o2c"][-1] and math.isnan(rows.iloc[0]["Average_n"])
    assert rows.iloc[3]["Rain"] == pytest.approx(np.mean([305 / 505, 315 / 505, 325 / 505]))
    ct1 = rows.iloc[5]
    assert ct1["CT"] == 1.0 and ct1["GunShot_n"] == 2 and math.isnan(ct1["GunShot_seed2"])
    t3 = table3(per_class, label=LABEL, metrics=made)
    assert t3.iloc[0]["Average"] == REPORTED_BASELINE[-1]
    assert list(t3["numbers"]) == [REPORTED_LABEL, REPORTED_LABEL, LABEL, REPORTED_LABEL]
    write_table(t2, tmp_path / "t2", label=LABEL)
    md = (tmp_path / "t2.md").read_text()
    assert "| 2.784 |" in md and f"310.0 ± {T_DF2 * 10 / math.sqrt(3):.1f}" in md and "_low" not in md


def test_every_label_is_what_the_runs_recorded_not_the_variants_name():
    """The README's ablation, `-S variants.o2c_ct1.tau_c=0.5`: every table, claim and check says 0.5."""
    metrics, logs = _claim_inputs()
    _made(metrics, o2c_ct1={"tau_c": 0.5})
    per_class = {v: {s: _per_class(m["fad_mean"]) for s, m in runs.items()} for v, runs in metrics.items()}
    assert model_names(metrics)["o2c_ct1"] == "O2C-GAN, CT 0.5" and model_names(metrics)["o2c"] == "O2C-GAN"
    t2 = table2(per_class, label=LABEL, metrics=metrics)
    ours = t2[(t2["numbers"] == LABEL) & (t2["method"] == "O2C-GAN")]
    assert list(ours["CT"]) == [0.1, 0.5] and list(ours["DT"]) == [0.1, 0.1]
    paper = t2[(t2["numbers"] == REPORTED_LABEL) & (t2["method"] == "O2C-GAN")]
    assert list(paper["CT"]) == [0.1, 1.0]  # the paper's rows keep the paper's temperatures
    t3 = table3(per_class, label=LABEL, metrics=metrics)
    assert list(t3["method"])[1:3] == ["O2C-GAN, CT 1.0", "O2C-GAN, CT 0.5"] and t3.iloc[2]["CT"] == 0.5
    assert table3_title(t3).endswith("over seeds (this run: O2C-GAN, CT 0.5)")
    claims = claims_table(metrics, logs)
    c2 = claims.loc["C2_o2c_ct1_vs_o2c"]
    assert c2["claim"] == ("C2 tau_c 1.0 beats 0.1: O2C-GAN, CT 0.5 < O2C-GAN (compared here: tau_d 0.1, tau_c 0.5, "
                           "label in D against tau_d 0.1, tau_c 0.1, label in D; the paper compared tau_d 0.1, "
                           "tau_c 1.0, label in D against tau_d 0.1, tau_c 0.1, label in D)")
    assert "O2C-GAN, CT 0.5 - O2C-GAN" in c2["measure"] and "O2C-GAN, CT 0.5" in c2["reading"]
    assert "compared here" not in claims.loc["C2_ocsupcon_ct1_vs_ocsupcon", "claim"]  # as the paper ran it
    checks = checks_table(metrics)
    assert checks.loc["fad_below_step0_o2c_ct1", "check"] == "training is real: O2C-GAN, CT 0.5 FAD below its step-0 FAD"
    text = results_readme(claims, checks, clips_table(metrics), table1(metrics), t2, t3, label=LABEL,
                          params=_params(), metrics=metrics)
    assert "## Table 2: per-class FAD, CT 0.1 vs 0.5 vs 1.0" in text and "O2C-GAN, CT 1.0 <" not in text
    assert table1_title(metrics, n_classes=7) == ("Table 1: mean FAD over 7 classes (tau_d = tau_c = 0.1) and "
                                                  "recognisability, over seeds")
    _made(metrics, o2c={"tau_d": 0.2})
    assert "each model at the temperatures its name says" in table1_title(metrics, n_classes=7)
    assert table1(metrics).set_index("variant").loc["o2c", "model"] == "O2C-GAN, DT 0.2"


def test_a_variant_mixing_settings_or_missing_them_is_refused():
    metrics = _made({"o2c": {0: _m(300.0), 1: _m(310.0)}})
    assert variant_settings(metrics) == {"o2c": {"loss": "o2c", "tau_d": 0.1, "tau_c": 0.1, "d_projection": True}}
    metrics["o2c"][1]["tau_c"] = 0.5
    with pytest.raises(DataError, match=r"runs of o2c were made with different settings .*seed 1: .*0\.5.*rerun"):
        table1(metrics)
    with pytest.raises(DataError, match=r"evaluate/o2c/seed4/metrics.json does not say what made the run.*"
                                        r"evaluate@o2c-4"):
        table1({"o2c": {4: _m(300.0)}})
    source = _made({"ocsupcon": {0: _m(300.0)}}, ocsupcon={"d2s_source": "paired_real"})
    assert model_names(source)["ocsupcon"] == "OC-SupConGAN"  # the reading the paper's text favours: named as the paper's
    source = _made({"ocsupcon": {0: _m(300.0)}}, ocsupcon={"d2s_source": "generated"})
    assert model_names(source)["ocsupcon"] == "OC-SupConGAN, source generated"


def test_results_readme_puts_verdicts_first():
    metrics, logs = _claim_inputs()
    metrics["hinge_only"] = {0: _m(330.0, probe=0.14)}
    _made(metrics)
    per_class = {v: {s: _per_class(m["fad_mean"]) for s, m in runs.items()} for v, runs in metrics.items()}
    text = results_readme(claims_table(metrics, logs), checks_table(metrics), clips_table(metrics), table1(metrics),
                          table2(per_class, label=LABEL, metrics=metrics),
                          table3(per_class, label=LABEL, metrics=metrics), label=LABEL, params=_params(), metrics=metrics, chance=1 / 7, tsne_seed=0)
    assert text.index("## The paper's claims") < text.index("## Table 1") < text.index("## Table 2")
    assert "from 3 seeds (fewer: hinge only (control, no contrastive term) 1)" in text
    assert '"not established"' in text and "detectable difference" in text
    for cid in ("C1", "C2", "C3", "C4"):  # two claims and the pooled row per claim; the splits only in the table
        lines = [line for line in text.splitlines() if line.startswith(f"- {cid} ")]
        assert len(lines) == 3 and "both families pooled" in lines[2] and "pairs" in lines[2]
    verdicts = claims_table(metrics, logs)
    counts = verdicts[verdicts["role"] == "claim"]["verdict"].value_counts()
    assert (f"{counts['reproduced']} of 8 comparisons reproduced, {counts['contradicted']} contradicted, "
            f"{counts['not established']} not established.") in text
    assert len(verdicts) > 8 and "| role |" in text and "| pooled |" in text
    assert "| reproduced |" in text and "| contradicted |" in text and "| not established |" in text
    assert "measures the sample of clips only" in text and "seed 0" in text
    assert "at most half" not in text
    assert "What each run's clips are" not in text  # metrics without the confusion measures: no section
    metrics["o2c"][0].update(probe_mi_bits=1.5, probe_mi_null95=0.1, probe_relabelled_accuracy=0.6,
                             probe_own_label_classes=5)
    assert "| O2C-GAN | 0 | " in results_readme(
        claims_table(metrics, logs), checks_table(metrics), clips_table(metrics), table1(metrics),
        table2(per_class, label=LABEL, metrics=metrics), table3(per_class, label=LABEL, metrics=metrics), label=LABEL,
        params=_params())
    assert "at most half" in results_readme(
        claims_table(metrics, logs), checks_table(metrics, profile="paper"), clips_table(metrics), table1(metrics),
        table2(per_class, label=LABEL, metrics=metrics), table3(per_class, label=LABEL, metrics=metrics), label=LABEL,
        params=_params("paper"))


def test_load_seed_runs_reads_the_seed_folders(tmp_path):
    for v, seeds in (("o2c", (0, 1, 7)), ("hinge_only", (0,))):
        for k in seeds:
            ev = tmp_path / "evaluate" / v / f"seed{k}"
            ev.mkdir(parents=True)
            (ev / "metrics.json").write_text(json.dumps(_made({v: {k: _m(300.0 + k)}})[v][k]))
            pd.DataFrame({"class": [*DCASE_CLASSES, "Average"], "fad": [300.0 + k] * 8,
                          "fad_step0": [500.0] * 8}).to_csv(ev / "fad.csv", index=False)
            tr = tmp_path / "train" / v / f"seed{k}"
            tr.mkdir(parents=True)
            _log(0.5).to_csv(tr / "log.csv", index=False)
    runs = load_seed_runs(tmp_path, ["o2c", "hinge_only", "contragan"], [0, 1, 2])
    # seed 7 is not in the list; hinge_only ran one seed; contragan none
    assert runs.seeds() == {"o2c": [0, 1], "hinge_only": [0], "contragan": []}
    assert runs.metrics["o2c"][1]["fad_mean"] == 301.0
    assert runs.per_class["o2c"][1]["Rain"] == 301.0 and runs.per_class_step0["o2c"][0]["Average"] == 500.0
    assert list(runs.logs["o2c"][0].columns) == ["step", "d_adv"] and runs.logs["contragan"] == {}
    t1 = table1(runs.metrics)
    assert list(t1["variant"]) == ["o2c", "hinge_only"] and t1.loc[0, "fad"] == 300.5


def test_claims_and_checks_are_dvc_metrics_matching_their_csv(tmp_path):
    from occ.atomic import write_json

    metrics, logs = _claim_inputs()
    metrics["hinge_only"] = {0: _m(330.0, probe=0.14), 1: _m(331.0, probe=0.15)}
    metrics["o2c_ct1"] = {0: _m(339.0)}  # one seed: no interval, its bounds are null
    _made(metrics)
    verdicts, checks = claims_table(metrics, logs), checks_table(metrics, profile="paper")
    assert list(verdicts.index[verdicts["role"] == "claim"]) == [f"{cid}_{a}_vs_{b}" for cid, a, b, _, _ in CLAIMS]
    assert {"fad_below_step0_o2c", "recognisable_o2c", "fad_at_most_half_step0_o2c",
            "recognisable_hinge_only"} <= set(checks.index)
    for name, table, to_metrics, quantity, outcome, codes in (
            ("claims", verdicts, claims_metrics, "difference", "verdict", VERDICT_CODES),
            ("checks", checks, checks_metrics, "value", "result", RESULT_CODES)):
        write_table(table, tmp_path / name)  # as the tables notebook writes them
        write_json(tmp_path / f"{name}.json", to_metrics(table))
        csv = pd.read_csv(tmp_path / f"{name}.csv", keep_default_na=False, na_values=[""])
        saved = json.loads((tmp_path / f"{name}.json").read_text())
        assert list(saved) == sorted(table.index) and len(csv) == len(table)  # every row, keyed as the table
        for key, (_, row) in zip(table.index, csv.iterrows()):
            leaf = saved[key]
            assert set(leaf) == {quantity, "low", "high", "halfwidth", "n_seeds", outcome, f"{outcome}_text"}
            assert all(isinstance(v, (int, float)) or v is None for k, v in leaf.items() if k != f"{outcome}_text")
            for field, column in ((quantity, quantity), ("low", f"{quantity}_low"), ("high", f"{quantity}_high"),
                                  ("halfwidth", f"{quantity}_halfwidth")):
                assert leaf[field] == row[column] or (leaf[field] is None and math.isnan(row[column])), (key, field)
            assert leaf["n_seeds"] == row[f"{quantity}_n"] and leaf[f"{outcome}_text"] == row[outcome]
            assert leaf[outcome] == codes.get(row[outcome], 0)
    saved = json.loads((tmp_path / "claims.json").read_text())
    assert saved["C1_o2c_vs_contragan"]["verdict"] == 1 and saved["C1_ocsupcon_vs_csupcongan"]["verdict"] == -1
    assert saved["C2_o2c_ct1_vs_o2c"]["n_seeds"] == 1 and saved["C2_o2c_ct1_vs_o2c"]["low"] is None
    saved = json.loads((tmp_path / "checks.json").read_text())
    assert saved["recognisable_o2c"]["result"] == 1 and saved["recognisable_hinge_only"]["result"] == 0
    assert saved["recognisable_hinge_only"]["result_text"].startswith("expected at chance")



def test_the_results_readme_names_the_source_reading_each_supcon_variant_ran_with():
    params = Path(__file__).resolve().parents[1] / "params.yaml"
    assert {v: load_params(params, variant=v).train.d2s_source for v in ("csupcongan", "ocsupcon", "ocsupcon_ct1")} \
        == dict.fromkeys(("csupcongan", "ocsupcon", "ocsupcon_ct1"), "paired_real")
    metrics, logs = _claim_inputs()
    per_class = {v: {s: _per_class(m["fad_mean"]) for s, m in runs.items()} for v, runs in metrics.items()}

    def readme(metrics):
        return results_readme(claims_table(metrics, logs), checks_table(metrics), clips_table(metrics),
                              table1(metrics), table2(per_class, label=LABEL, metrics=metrics),
                              table3(per_class, label=LABEL, metrics=metrics), label=LABEL, params=_params(),
                              metrics=metrics)

    unrecorded = {v: {s: {k: x for k, x in m.items() if k != "d2s_source"} for s, m in runs.items()}
                  for v, runs in metrics.items()}
    assert "`train.d2s_source`" not in readme(unrecorded)  # no run recorded a source reading
    _made(metrics, ocsupcon={"d2s_source": "paired_real"}, csupcongan={"d2s_source": "generated"})
    assert source_readings(metrics) == {"csupcongan": "generated", "ocsupcon": "paired_real",
                                        "ocsupcon_ct1": "paired_real"}
    # the readings the runs recorded, each model named by its loss and temperatures
    assert ("C-SupConGAN (C-SupCon) `generated`; OC-SupConGAN `paired_real`; OC-SupConGAN, CT 1.0 `paired_real`."
            in readme(metrics))


def test_the_d_reading_names_the_model_where_it_departs_from_the_paper():
    from occ.report.paper import PAPER_RUNS, is_class_blind, model_name

    assert all(run["d_projection"] is True for run in PAPER_RUNS.values())
    o2c = {"loss": "o2c", "tau_d": 0.1, "tau_c": 1.0}
    assert model_name({**o2c, "d_projection": True}) == "O2C-GAN, CT 1.0"
    assert model_name({**o2c, "d_projection": False}) == "O2C-GAN, CT 1.0, D without label"
    assert model_name(o2c) == "O2C-GAN, CT 1.0, D without label"  # recorded before the setting: no label in D
    assert model_name({"loss": "ocsupcon", "tau_d": 0.1, "tau_c": 0.1, "d_projection": False,
                       "d2s_source": "generated"}) == "OC-SupConGAN, D without label, source generated"
    hinge, cgan = (_settings(MADE[v]) for v in ("hinge_only", "projection_cgan"))
    assert model_name(hinge) == "hinge only (control, no contrastive term)"
    assert model_name(cgan) == "projection cGAN (control: label in D, no contrastive term)"
    assert is_class_blind(hinge) and not is_class_blind(cgan) and not is_class_blind(_settings(MADE["o2c"]))
    assert is_class_blind({"loss": "none", "tau_d": 0.1, "tau_c": 0.1})  # an old control's record


def test_old_metrics_without_the_d_reading_read_as_d_without_label():
    metrics, logs = _claim_inputs()
    old = {v: {s: {k: x for k, x in m.items() if k != "d_projection"} for s, m in runs.items()}
           for v, runs in metrics.items()}
    assert {s["d_projection"] for s in variant_settings(old).values()} == {False}
    assert model_names(old)["o2c"] == "O2C-GAN, D without label"
    claim = claims_table(old, logs).loc["C1_o2c_vs_contragan", "claim"]
    assert claim.endswith("(compared here: tau_d 0.1, tau_c 0.1, D without label against tau_d 0.1, tau_c 0.1, D "
                          "without label; the paper compared tau_d 0.1, tau_c 0.1, label in D against tau_d 0.1, "
                          "tau_c 0.1, label in D)")
    assert table1(old).set_index("variant").loc["contragan", "model"] == "ContraGAN (2C), D without label"


def test_table1_lists_both_controls_by_what_their_runs_recorded():
    metrics = _made({"o2c": {s: _m(300.0 + s) for s in range(2)}, "hinge_only": {s: _m(330.0) for s in range(2)},
                     "projection_cgan": {s: _m(320.0) for s in range(2)}, "o2c_ct1": {0: _m(1.0)}})
    t1 = table1(metrics)
    assert list(t1["variant"]) == ["o2c", "hinge_only", "projection_cgan"]
    assert list(t1["model"])[1:] == ["hinge only (control, no contrastive term)",
                                     "projection cGAN (control: label in D, no contrastive term)"]
    # a control is a run without contrastive term, whatever its variant's key
    renamed = _made({"o2c": {0: _m(300.0)}, "hinge_only": {0: _m(330.0)}})
    renamed["my_control"] = renamed.pop("hinge_only")
    assert list(table1(renamed)["variant"]) == ["o2c", "my_control"]


def test_recognisability_against_the_paired_control_by_hand():
    from occ.report.checks import control_variant, probe_comparisons, recognisable_sentences

    confusion = dict(probe_mi_bits=1.0, probe_mi_null95=0.1, probe_relabelled_accuracy=0.6, probe_own_label_classes=4)
    probes = {"o2c": [0.50, 0.60, 0.40], "contragan": [0.10, 0.20, 0.15], "hinge_only": [0.27, 0.29, 0.26],
              "projection_cgan": [0.30, 0.50]}
    metrics = _made({v: {s: {**_m(300.0, probe=p), **confusion} for s, p in enumerate(ps)}
                     for v, ps in probes.items()})
    assert control_variant(metrics) == "hinge_only"
    assert control_variant(_made({"projection_cgan": {0: _m(1.0)}})) is None  # the label in D: not class-blind
    checks = checks_table(metrics)
    # o2c - control: 0.23, 0.31, 0.14; mean 0.68 / 3, s by hand, t with 2 degrees of freedom
    d = [0.50 - 0.27, 0.60 - 0.29, 0.40 - 0.26]
    mean = sum(d) / 3
    half = T_DF2 * math.sqrt(sum((x - mean) ** 2 for x in d) / 2) / math.sqrt(3)
    row = checks.loc["recognisable_vs_control_o2c"]
    assert row["value"] == pytest.approx(mean) and row["value_halfwidth"] == pytest.approx(half)
    assert row["result"] == "passed" and mean - half > 0  # the hand interval lies above 0 too
    assert row["check"] == "recognisable: O2C-GAN probe accuracy above the paired control"
    assert row["criterion"] == ("the interval of model - control (hinge only (control, no contrastive term), same "
                                "seed) lies above 0")
    assert checks.loc["recognisable_vs_control_contragan", "result"] == "failed"  # -0.17, -0.09, -0.11
    assert checks.loc["recognisable_vs_control_projection_cgan", "value_n"] == 2
    assert "recognisable_vs_control_hinge_only" not in checks.index
    assert checks.loc["recognisable_hinge_only", "result"].startswith("expected at chance")
    # the projection cGAN sees the class (in D): held against chance, not expected at it
    assert checks.loc["recognisable_projection_cgan", "check"].endswith("above chance")
    clips = clips_table(metrics).set_index(["variant", "seed"])
    assert clips.loc[("o2c", 1), "control_probe_accuracy"] == 0.29
    assert clips.loc[("o2c", 1), "minus_control"] == pytest.approx(0.31)
    assert math.isnan(clips.loc[("hinge_only", 0), "minus_control"])
    sentences = recognisable_sentences(clips_table(metrics))
    assert sentences[0] == "ContraGAN (2C): recognisable in 0 of 3 seeds; above the paired control in 0 of 3."
    assert sentences[1] == "O2C-GAN: recognisable in 2 of 3 seeds (0, 1); above the paired control in 3 of 3."
    p = probe_comparisons(metrics).set_index("variant")
    assert list(p.index) == ["contragan", "o2c", "hinge_only", "projection_cgan"]
    assert p.loc["o2c", "minus_control"] == pytest.approx(mean) and p.loc["o2c", "vs_control"] == "above"
    assert p.loc["o2c", "minus_control_low"] == pytest.approx(mean - half)
    assert p.loc["contragan", "vs_control"] == "below" and p.loc["contragan", "vs_chance"] == "not established"
    assert p.loc["o2c", "vs_chance"] == "above" and p.loc["hinge_only", "vs_control"] == "control"
    md = to_markdown(readable(p.reset_index(), chance=1 / 7))
    assert "probe - paired control" in md and f"{mean:.2f} [" in md and "against the paired control" in md


def test_the_results_readme_names_the_d_reading_of_each_model():
    metrics, logs = _claim_inputs()
    metrics["hinge_only"] = {s: _m(330.0, probe=0.14) for s in range(3)}
    _made(metrics, o2c_ct1={"d_projection": False})
    per_class = {v: {s: _per_class(m["fad_mean"]) for s, m in runs.items()} for v, runs in metrics.items()}
    text = results_readme(claims_table(metrics, logs), checks_table(metrics), clips_table(metrics), table1(metrics),
                          table2(per_class, label=LABEL, metrics=metrics),
                          table3(per_class, label=LABEL, metrics=metrics), label=LABEL, params=_params(),
                          metrics=metrics)
    line = next(x for x in text.splitlines() if x.startswith("The label in D (`train.d_projection`"))
    assert "O2C-GAN `label in D`; O2C-GAN, CT 1.0 `D without label`;" in line
    assert "hinge only (control, no contrastive term) `D without label`" in line
    assert "O2C-GAN, CT 1.0, D without label" in text  # the model's name elsewhere says it
    assert "the only part of the contrastive numerator" not in text
