"""`python -m binary_encoding.report PATH`: see `binary_encoding.report.cli`."""

import sys

from . import main

sys.exit(main())
