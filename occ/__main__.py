"""``python -m occ``: the ``occ`` command (:mod:`occ.cli.main`)."""

import sys

from occ.cli.main import main

sys.exit(main())
