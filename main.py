"""Entry point: ``python main.py <command>`` (see ``python main.py --help``).

Without a command it opens the desktop application when a display is available.
"""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
