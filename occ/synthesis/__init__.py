"""From a generator to sound: G -> log-mels -> audio -> files.

- ``generate``: evaluation latents with per-sample seeds, standing statistics, log-mels of a generator;
- ``vocoder``: log-mel -> waveform (HiFi-GAN, Griffin-Lim) and re-synthesis;
- ``hifigan``: the HiFi-GAN V1 network and checkpoint folding;
- ``submission``: the DCASE submission layout and its format checks.

May import: the top-level basics, ``occ.data`` and ``occ.nets``.
"""
