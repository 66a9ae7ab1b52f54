"""``python -m examples.vm``: run the demo."""

import sys

from .demo import main

sys.exit(main())
