import sys

from vecx.cli import main

sys.exit(main())
