"""`benchmarks/gpu_check.py --device cpu --tiny`: every check runs and its JSON holds finite, positive figures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_check import KIND_VARIANT, PRECISIONS, queue_makespan, schedule_estimate, step_rates  # noqa: E402

from occ.config import LOSS_KINDS, variant_names  # noqa: E402


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny", "--ddp", "2",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_every_kind_and_precision_trains_with_finite_losses(tiny_result):
    result, _ = tiny_result
    rows = {(r["kind"], r["precision"]): r for r in result["gan"]}
    assert set(rows) == {(k, p) for k in LOSS_KINDS for p in PRECISIONS}
    for (kind, precision), r in rows.items():
        assert r["variant"] == KIND_VARIANT[kind]
        assert r["finite"] is True
        assert r["last_losses"] and all(math.isfinite(v) for v in r["last_losses"].values())
        assert r["steps_timed"] == 2 and r["batch_size"] == 4
        for key in ("steps_per_s", "median_step_ms", "peak_mem_gib", "g_params", "d_params"):
            assert _positive(r[key]), (kind, precision, key, r[key])
        assert r["autocast"] is False  # bf16 autocast applies on CUDA only


def test_supcon_and_evaluation_figures(tiny_result):
    result, stdout = tiny_result
    sup = result["supcon"]
    assert sup["finite"] is True and math.isfinite(sup["last_losses"]["loss"])
    assert all(_positive(sup[k]) for k in ("steps_per_s", "median_step_ms", "peak_mem_gib"))
    ev = result["eval"]
    assert ev["finite"] is True and ev["clips"] == 7
    assert set(ev["stages"]) == {"generate", "vocode_hifigan", "embed_vggish", "embed_encoder"}
    assert all(_positive(s["clips_per_s"]) and _positive(s["seconds"]) for s in ev["stages"].values())
    assert _positive(ev["paper_path_clips_per_s"])
    assert ev["embedding_shapes"]["vggish"] == [10, 128]
    assert result["ddp"]["gpus"] == 0  # the DDP figures: test_ddp_check_runs_under_torchrun_on_two_processes
    assert result["environment"]["gpu"] == "none (CPU)"
    assert result["skipped"] == []
    assert "steps/s" in stdout and "Tables 1-2" in stdout


def test_estimate_covers_every_variant(tiny_result):
    result, _ = tiny_result
    est = result["estimate"]
    assert list(est["per_model"]) == variant_names(ROOT / "params.yaml")
    t = est["tables_1_2"]
    assert t["gan_runs"] == 3 * len(est["per_model"]) and t["encoder_runs"] == 1  # the one supcon stage
    assert _positive(t["hours_1_gpu"]) and _positive(t["hours_8_gpus"])
    assert t["hours_8_gpus"] >= t["hours_1_gpu"] / 8 - 1e-9  # no better than perfect spreading
    assert t["hours_8_gpus"] >= max(m["hours_1_gpu"] for m in est["per_model"].values()) - 1e-9


def test_schedule_estimate_arithmetic():
    """Hand-made rates: 100k steps at 10 steps/s = 2.78 h per model; SupCon 20k steps at 4 steps/s = 1.39 h."""
    gan = [{"kind": k, "precision": "bf16", "steps_per_s": 10.0} for k in LOSS_KINDS]
    result = {"gan": gan, "supcon": {"steps_per_s": 4.0}, "eval": None}
    est = schedule_estimate(result, ROOT / "params.yaml", gpus=8, seeds=3)
    per = 100_000 / 10.0 / 3600.0
    sup = 20_000 / 4.0 / 3600.0
    assert all(m["hours_1_gpu"] == pytest.approx(per) for m in est["per_model"].values())
    assert est["supcon_hours"] == pytest.approx(sup)
    n = len(est["per_model"])
    assert est["tables_1_2"]["hours_1_gpu"] == pytest.approx(3 * n * per + sup)  # one encoder f for every run
    # list scheduling: no better than perfect spreading or the longest chain, no worse than Graham's bound
    total, t8 = est["tables_1_2"]["hours_1_gpu"], est["tables_1_2"]["hours_8_gpus"]
    assert t8 >= max(total / 8, sup + per) - 1e-9
    assert t8 <= sup + total / 8 + per + 1e-9


def test_queue_makespan():
    jobs = [(3.0, "a", None), (2.0, "b", "enc"), (2.0, "c", None), (1.0, "d", None)]
    # two GPUs, one busy with the encoder until 1.0: a on GPU 0 at 0; at 1.0 GPU 1 takes b (ready now);
    # at 3.0 both take c and d: ends at 5.0
    assert queue_makespan(jobs, [0.0, 1.0], {"enc": 1.0}) == pytest.approx(5.0)
    # a GPU that falls free before the dependency is done waits for it
    assert queue_makespan([(1.0, "b", "enc")], [0.0], {"enc": 2.5}) == pytest.approx(3.5)
    assert queue_makespan([], [0.0], {}) == 0.0


def test_step_rates_leave_out_the_warmup():
    r = step_rates([5.0, 0.5, 0.25, 0.25], warmup=1)
    assert r["steps_timed"] == 3 and r["steps_per_s"] == pytest.approx(3.0)
    assert r["median_step_ms"] == pytest.approx(250.0) and r["warmup_step_ms"] == pytest.approx(5000.0)
    with pytest.raises(ValueError):
        step_rates([1.0], warmup=1)


def test_ddp_check_runs_under_torchrun_on_two_processes(tiny_result):
    result, stdout = tiny_result
    dd = result["ddp"]
    assert dd["exercised"] is True and dd["processes"] == 2 and dd["finite"] is True, dd
    assert dd["global_batch"] == 4 and _positive(dd["steps_per_s"]) and _positive(dd["speedup_vs_one_process"])
    assert "gan o2c under torchrun x2" in stdout


def test_without_ddp_the_check_says_it_was_not_exercised():
    from gpu_check import ddp_info
    import torch

    assert ddp_info(torch.device("cpu"), 0) == {"gpus": 0, "processes": 0, "exercised": False,
                                                "note": "no GPU, DDP not exercised"}
