"""`python -m logspike ...` is the `logspike` command."""
import sys

from logspike.cli import main

sys.exit(main())
