"""`python -m control_plane.cli` runs the `dts` client."""

import sys

from control_plane.cli.main import main

sys.exit(main())
