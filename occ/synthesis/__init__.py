"""From a generator to sound: G -> log-mels -> audio -> files.

- ``generate``: evaluation latents with per-sample seeds, standing statistics, G -> log-mels -> audio as the
  evaluation and ``occ generate`` make clips, a run's class names;
- ``vocoder``: log-mel -> waveform (HiFi-GAN, Griffin-Lim), ``eval.vocoder``, re-synthesis of real clips;
- ``hifigan``: the HiFi-GAN V1 network and checkpoint folding;
- ``submission``: the DCASE submission layout and its format checks.

May import: the top-level basics, ``occ.data`` and ``occ.nets``.
"""
