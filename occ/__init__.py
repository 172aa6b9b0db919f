"""occ: Foley sound synthesis with GANs using oneself-conditioned contrastive learning.

Reproduces Chung, Lee & Jung, "Foley sound synthesis based on GANs using oneself-conditioned
contrastive learning" (DCASE 2023 Workshop; DCASE 2023 Task 7 Track B): O2C-GAN and OC-SupConGAN,
with ContraGAN and C-SupConGAN as ablations.
"""

__version__ = "0.1.0"
