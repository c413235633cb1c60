import sys

from smoke.journey import main

sys.exit(main())
