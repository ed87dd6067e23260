"""`python -m binary_encoding.report PATH`: see `binary_encoding.report.cli`."""

import sys

from .cli import main

sys.exit(main())
