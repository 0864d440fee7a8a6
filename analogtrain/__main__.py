"""``python -m analogtrain`` == the ``analogtrain`` command."""

import sys

from analogtrain.cli import main

if __name__ == "__main__":
    sys.exit(main())
