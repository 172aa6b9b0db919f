"""Reporting: intervals over seeds, the paper's tables and claims, figures, what notebooks show.

May import: the top-level basics, ``occ.data`` and ``occ.metrics`` (and what those may import).
"""
