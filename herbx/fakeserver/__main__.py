"""Run the fake OpenRouter: ``python -m herbx.fakeserver --help``."""

import sys

from herbx.fakeserver.cli import main

if __name__ == "__main__":
    sys.exit(main())
