"""Training: the losses and the two trainers.

- ``losses``: hinge, 2C, C-SupCon, O2C, OC-SupCon and SupCon;
- ``diffaugment``: DiffAugment for D's inputs;
- ``distributed``: data parallelism under torchrun;
- ``run_folder``: the run folder both trainers open (lock, restart on a changed configuration, device, rank-0
  saving, checkpoint validation, resume);
- ``step_loop``: the step loop both trainers run (the log, checkpoint timing, the run's counters) and its
  divergence checks;
- ``guard``: the divergence guard's bounds (losses and weights past what a healthy run reaches);
- ``gan_step``: one GAN step (``draw_step``, ``d_step``, ``g_step``, Eq. 6) and the EMA of G;
- ``gan_train``: the GAN run around the steps (checkpoints, resume, the log) and the train stage's run;
- ``supcon_train``: SupCon pretraining and fine-tuning of f, and the supcon stage's training.

May import: the top-level basics, ``occ.data`` and ``occ.nets``.
"""
