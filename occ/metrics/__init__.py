"""Measuring generated audio: embeddings, FAD, diversity, the probe, D's embedding space.

- ``embeddings``: one ``Embedder`` interface over VGGish, aiSFX and f (``vggish``, ``vggish_frontend``, ``aisfx``),
  the evaluation's embedder set-up, embeddings of the feature cache's real clips;
- ``frechet``, ``fad``, ``dcase_eval_stats``: the Frechet distance as DCASE computed it, per-class FAD, the
  official evaluation-set statistics;
- ``diversity``, ``probe``: precision/recall/density/coverage, the recognisability probe and the encoder's accuracy;
- ``confusion``: the probe's confusion matrix on a run's clips (class-blind, or class-distinct under which labels);
- ``embedding_files``: per-class embeddings on disk;
- ``d_embeddings``: generated data in D's embedding space (t-SNE, within-class distance);
- ``evaluate``: assembles a run's evaluation from ``occ.synthesis`` and the metrics above;
- ``run_settings``: what made a run (loss, temperatures, source reading), as its evaluation records it.

May import: the top-level basics, ``occ.data``, ``occ.nets`` and ``occ.synthesis``.
"""
