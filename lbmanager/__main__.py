"""`python -m lbmanager`."""

import sys

from lbmanager.cli.main import main

sys.exit(main())
