import sys

from qloop.cli import main

sys.exit(main())
