"""Class-blind or mislabelled? The recognisability probe's confusion matrix on every run's generated clips.

The `evaluate` stage reports the probe's accuracy: the share of generated clips the probe assigns to the class G was
asked for. A low accuracy has two readings. Either G ignores its class (every class's clips sound alike: the probe's
predictions do not depend on the requested class), or G makes class-distinct clips that sound like other classes
(the predictions depend on the requested class, through the wrong mapping). This script tells them apart, per run,
from the clips the pipeline wrote (``runs/generated/<variant>/seed<k>/<class>/*.wav``) and the probe it fitted
(``runs/reference/probe.npz``):

* ``acc``: the probe's accuracy (as the `evaluate` stage's, from the 16-bit WAV files rather than the float clips);
* ``MI``: the mutual information between the requested and the predicted class, in bits (at most log2 7 = 2.81),
  with ``null95``, the 95th percentile of the MI when the requested classes are shuffled (200 permutations): an MI
  above it means the clips depend on the class asked for;
* ``perm. acc``: the accuracy under the best one-to-one relabelling of the classes (Hungarian): high with a low
  ``acc`` means class-distinct but mislabelled clips;
* ``classes``: how many distinct classes the probe predicts at all, and the predictions per requested class.

The measures are `occ.metrics.confusion`'s, which the `evaluate` stage now records per run
(``probe_confusion.csv``, ``probe_mi_bits`` ... in its metrics, and ``results/tables/clips.md``); this script
recomputes them from the WAV files. Needs a finished pipeline (the `evaluate` stages). Writes ``--out`` (JSON lines, one per run, with the confusion
matrix) and prints a markdown table.

Run: ``python benchmarks/probe_confusion.py`` (aiSFX on 280 clips per run, about a minute per run on one thread).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from occ.metrics.confusion import confusion, mi_null95, mutual_information, relabelled_accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated", default="runs/generated")
    ap.add_argument("--probe", default="runs/reference/probe.npz")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/probe_confusion.jsonl")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from lever_common import machine_line

    from occ.cli.fad import clip_sets
    from occ.data.audio import load_clip
    from occ.data.classes import class_folder
    from occ.metrics.embeddings import get_embedder
    from occ.metrics.probe import load_probe

    probe = load_probe(args.probe)
    names = probe.class_names
    runs = sorted(p for p in Path(args.generated).glob("*/seed*") if p.is_dir())
    if not runs:
        raise SystemExit(f"{args.generated}: no <variant>/seed<k> folders; run the pipeline's evaluate stages first")
    embedder = get_embedder("aisfx")
    print(f"{machine_line(args.threads)}; probe: {args.probe}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with open(out, "w") as fh:
        for run in runs:
            t0 = time.perf_counter()
            requested, predicted = [], []
            sets = clip_sets(run, what="generated")  # class folder -> its audio files, as `occ fad` reads them
            for c, name in enumerate(names):
                files = sets.get(class_folder(name))
                if not files:
                    raise SystemExit(f"{run / class_folder(name)}: no audio files; rerun its evaluate stage")
                emb = embedder.embed(np.stack([load_clip(f) for f in files]))
                predicted += probe.predict(emb).tolist()
                requested += [c] * len(files)
            req, pred = np.array(requested), np.array(predicted)
            conf = confusion(req, pred, len(names))
            row = {"variant": run.parent.name, "seed": run.name, "acc": float((req == pred).mean()),
                   "mi_bits": mutual_information(conf), "mi_null95": mi_null95(req, pred, len(names)),
                   "perm_acc": relabelled_accuracy(conf), "n_predicted": int((conf.sum(0) > 0).sum()),
                   "top_prediction": {names[c]: names[int(conf[c].argmax())] for c in range(len(names))},
                   "confusion": conf.tolist(), "classes": names, "seconds": round(time.perf_counter() - t0, 1)}
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            rows.append(row)
            print(f"{row['variant']}/{row['seed']}: acc {row['acc']:.3f}, MI {row['mi_bits']:.2f} bits "
                  f"(null95 {row['mi_null95']:.2f}), perm. acc {row['perm_acc']:.3f}, {row['n_predicted']} classes "
                  f"predicted, {row['seconds']} s", flush=True)
    print("\n| run | acc | MI bits (null95) | perm. acc | classes predicted |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} {r['seed']} | {r['acc']:.2f} | {r['mi_bits']:.2f} ({r['mi_null95']:.2f}) | "
              f"{r['perm_acc']:.2f} | {r['n_predicted']} |")


if __name__ == "__main__":
    main()
