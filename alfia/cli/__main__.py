"""``python -m alfia.cli ...`` (and ``torchrun ... -m alfia.cli train ...``): the ``alfia`` command."""

import sys

from alfia.cli import main

sys.exit(main())  # no argv: main ignores a Ctrl-C during the interpreter's shutdown
