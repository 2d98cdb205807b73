import sys

from sentry.cli import main

sys.exit(main())
