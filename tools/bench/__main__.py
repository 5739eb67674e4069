"""`python -m tools.bench [--n 20|50|200|1000] [options]` from the repository's root: see run.py."""

import sys

from .run import main

sys.exit(main())
