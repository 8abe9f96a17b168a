import sys

from alertlib.cli import main

sys.exit(main())
