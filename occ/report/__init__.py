"""Reporting: this run's results over seeds beside the paper's, as tables, verdicts, figures and notebook output.

- ``paper``: the paper's models under this project's variant names, and the numbers it reports;
- ``results``: the per-run results read back from ``results/`` (``SeedRuns``) and this run's label;
- ``intervals``: means over seeds with Student t intervals, paired comparisons and the verdict rule;
- ``tables``: Tables 1-3, each of this run's numbers a mean over seeds;
- ``claims``: the paper's claims C1-C4, each decided by a paired comparison over seeds;
- ``checks``: "is the training real?" per model (FAD below step 0, recognisable above chance and the paired
  control);
- ``shares``: what the contrastive numerator is made of per model (class and source terms' shares, over seeds);
- ``markdown``: a table's Markdown view and its CSV and Markdown files, numbers written for reading;
- ``readme``: the text of ``results/README.md``;
- ``dvc_metrics``: the claims' and checks' numbers as the DVC metrics files of the tables stage;
- ``plots``, ``plots_seeds``, ``plots_data``: figures of single runs, over seeds, and of the training data;
- ``display``: what an executed notebook shows (figures a stage saved, rounded tables, audio players);
- ``notebook``: the set-up every notebook makes first, in one call.

May import: the top-level basics, ``occ.data`` and ``occ.metrics`` (and what those may import).
"""
