"""Running the pipeline: a notebook executed whole or not at all.

May import: the top-level basics.
"""
