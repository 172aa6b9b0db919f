"""The pipeline's stages as calls, one module per stage that has no home lower down: ``data``, ``supcon``, ``train``,
``tables``, ``figures`` (``reference``, ``step0`` and ``evaluate`` are ``occ.metrics.reference_stage`` and
``occ.metrics.evaluate_stage``). Each call, ``<stage>_stage(layout, params, **axes)``, loads its own inputs, sets its
threads, writes every ``results/`` file through ``occ.atomic`` and returns what its notebook shows;
``occ.registry.STAGES`` names them all.

May import: every layer below it.
"""
