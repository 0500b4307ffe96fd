"""``python -m hierarchy`` (and ``torchrun -m hierarchy``) runs the command line."""

import sys

from hierarchy.cli import main

sys.exit(main())
