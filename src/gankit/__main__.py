"""``python -m gankit``: what torchrun starts (``torchrun ... -m gankit train MODEL ...``)."""

import sys

from gankit.cli import main

sys.exit(main())
