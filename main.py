"""Entry point: ``python main.py <command>`` (see ``python main.py --help``).

Without a command it opens the desktop application when a display is available.
"""

import signal
import sys

from app.cli import main

if __name__ == "__main__":
    code = main()
    # the work is over: a late Ctrl-C while the interpreter shuts down must not turn a
    # clean exit into a traceback (nor the exit code into "killed by SIGINT")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
