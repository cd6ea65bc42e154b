"""`python -m lbmanager`."""

import sys

from lbmanager.cli import main

sys.exit(main())
