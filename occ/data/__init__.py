"""The data layer: audio in, features out.

- ``audio``: clip loading, the DCASE log-mel front end, mel normalisation to [-1, 1] and back, WAV writing;
- ``classes``: the seven DCASE classes and their folder names;
- ``synth``: the procedural foley synthesiser (the embedded stand-in for the DCASE dev set);
- ``datasets``: dataset scan, class map, held-out split, the log-mel feature cache;
- ``checks``: validation of training clips and the digests of data and encoder stored in checkpoints.

May import: the top-level basics (``occ.errors``, ``occ.atomic``, ...). Nothing else of ``occ``.
"""
