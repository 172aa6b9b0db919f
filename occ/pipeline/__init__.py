"""Running the pipeline: ``run_notebook``, a notebook executed whole or not at all (every stage's command), and
``parallel``, the driver that runs several DVC stages at once (``occ repro``), with ``estimate``, its time left.

May import: the top-level basics.
"""
