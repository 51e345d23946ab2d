import sys

from messaging_assets.dev.supervisor import main

sys.exit(main())
