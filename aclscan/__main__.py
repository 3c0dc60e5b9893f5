import sys

from aclscan.cli import main

sys.exit(main())
