"""The ``occ`` command: ``generate``, ``fad``, ``check-submission``, ``train``, ``supcon``.

May import: every layer below it.
"""
