"""``python -m occ``: the ``occ`` command (:mod:`occ.cli`)."""

import sys

from occ.cli import main

sys.exit(main())
