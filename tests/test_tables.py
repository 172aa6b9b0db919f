"""Tables and the claims verdicts are computed from the numbers they are given."""

import pandas as pd

from occ import tables


def _metrics(fad, step0=100.0, recall=0.5):
    return {"fad_mean": fad, "fad_mean_step0": step0, "fad_mean_ci_low": fad - 1, "fad_mean_ci_high": fad + 1,
            "recall_mean": recall}


def _log(level):
    return pd.DataFrame({"step": range(10), "d_adv": [level] * 10})


def test_claims_follow_the_numbers():
    metrics = {"contragan": _metrics(40.0, recall=0.1), "o2c": _metrics(30.0, recall=0.3),
               "csupcongan": _metrics(20.0), "ocsupcon": _metrics(25.0), "o2c_ct1": _metrics(35.0),
               "ocsupcon_ct1": _metrics(10.0)}
    logs = {"contragan": _log(0.1), "o2c": _log(0.5), "csupcongan": _log(0.9), "ocsupcon": _log(0.2)}
    v = tables.claims(metrics, logs, label="this run").set_index("claim")["reproduced"]
    assert v[[c for c in v.index if "O2C-GAN < ContraGAN" in c][0]] == "yes"
    assert v[[c for c in v.index if "OC-SupConGAN < C-SupConGAN" in c][0]] == "no"
    assert v[[c for c in v.index if "O2C-GAN, CT 1.0 < O2C-GAN" in c][0]] == "no"
    assert v[[c for c in v.index if "OC-SupConGAN, CT 1.0 < OC-SupConGAN" in c][0]] == "yes"
    assert v[[c for c in v.index if "ContraGAN (2C) below O2C-GAN" in c][0]] == "yes"
    assert v[[c for c in v.index if "C-SupConGAN (C-SupCon) below OC-SupConGAN" in c][0]] == "no"
    assert v[[c for c in v.index if "recall O2C-GAN" in c][0]] == "yes"
    # training is real: 40 / 100 <= 0.5 -> yes; a generator at 60 % of its step-0 FAD -> no
    metrics["hinge_only"] = _metrics(60.0)
    v = tables.claims(metrics, logs, label="this run").set_index("claim")["reproduced"]
    assert v[[c for c in v.index if "hinge only" in c][0]] == "no"
    assert v[[c for c in v.index if "training is real: ContraGAN" in c][0]] == "yes"


def test_tables_put_reported_and_run_numbers_side_by_side(tmp_path):
    classes = tables.CLASSES
    per_class = {v: pd.Series({c: float(i) for i, c in enumerate(classes)}) for v in ("o2c", "o2c_ct1")}
    t2 = tables.table2(per_class, label="this run (x, y)")
    rows = t2[t2["method"] == "O2C-GAN"]
    assert list(rows["numbers"]) == [tables.REPORTED_LABEL, "this run (x, y)"] * 2
    assert rows.iloc[1]["Average"] == sum(range(7)) / 7
    assert rows.iloc[0]["Average"] == tables.REPORTED_TABLE2["o2c"][-1]
    t1 = tables.table1({"o2c": _metrics(30.0)}, label="this run (x, y)")
    assert t1.loc[0, tables.REPORTED_LABEL] == 5.480 and t1.loc[0, "trained / step-0"] == 0.3
    tables.write_table(t1, tmp_path / "t1", title="T1")
    assert pd.read_csv(tmp_path / "t1.csv").shape == t1.shape
    md = (tmp_path / "t1.md").read_text()
    assert md.startswith("# T1") and "| O2C-GAN |" in md
