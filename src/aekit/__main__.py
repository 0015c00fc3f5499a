"""``python -m aekit``: the same as the ``aekit`` command."""

import sys

from aekit.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
