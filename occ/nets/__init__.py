"""The networks: G, D and the source encoder f, and how they are built and loaded.

- ``layers``: blocks common to G and D (BigGAN blocks, spectral norm, init) and the width presets;
- ``generator``: the class-conditional BigGAN-style G(z, c) -> 80 x 344 normalised log-mel;
- ``discriminator``: D1 (trunk), D2 (adversarial head), the projection head h and class embeddings e;
- ``encoder``: f, a ResNet18 with projection and classification heads, and its augmentation;
- ``models``: presets, building (with the trainer's initialisation) and loading from checkpoints.

May import: the top-level basics and ``occ.data``.
"""
