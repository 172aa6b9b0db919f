"""The data layer: audio in, features out.

- ``audio``: clip loading, the DCASE log-mel front end and its shape constants, WAV writing;
- ``classes``: the seven DCASE classes and their folder names;
- ``synth``, ``synth_blocks``: the procedural foley synthesiser (the embedded stand-in for the DCASE dev set) and its
  building blocks;
- ``scan``: a dataset folder scanned (its clips, classes and layout);
- ``datasets``: the held-out split, the log-mel feature cache, mel normalisation to [-1, 1] and back;
- ``checks``: validation of training clips and the digests of data and encoder stored in checkpoints.

May import: the top-level basics (``occ.errors``, ``occ.atomic``, ...). Nothing else of ``occ``.
"""
