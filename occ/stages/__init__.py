"""The pipeline's stages as calls, one module per stage: ``data``, ``supcon``, ``train``, ``reference``, ``evaluate``
(the step-0 and evaluate stages), ``tables``, ``figures``. Each call, ``<stage>_stage(layout, params, **axes)``, loads its own inputs, sets its
threads, writes every ``results/`` file through ``occ.atomic`` and returns what its notebook shows;
``occ.registry.STAGES`` names them all.

May import: every layer below it.
"""
