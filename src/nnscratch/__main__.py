"""``python -m nnscratch`` runs the same command line as ``nnscratch``."""

import sys

from nnscratch.cli import main

sys.exit(main())
