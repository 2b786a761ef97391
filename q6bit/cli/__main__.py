"""`python -m q6bit.cli COMMAND ...` = `q6bit COMMAND ...`."""

import sys

from . import main

sys.exit(main())
