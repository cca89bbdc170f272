"""Start, stop, restart or show the FloriSense stack as plain processes (`make up`, `make down`)."""

import sys

from florisense_model.stack.lifecycle import main

if __name__ == "__main__":
    sys.exit(main())
