"""The ``occ`` command, one module per command: ``generate`` (and ``check-submission``), ``fad`` (and ``heldout``),
``repro``, ``train`` (and ``supcon``), ``fetch`` (``fetch-weights``); ``common`` holds what they share, ``main`` assembles the parser.

May import: every layer below it.
"""
