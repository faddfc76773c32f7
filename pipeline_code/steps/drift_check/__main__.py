"""``python3 -m drift_check``: the processing job's entry point."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
