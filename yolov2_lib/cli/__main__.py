"""``python -m yolov2_lib.cli``: the `yolov2` command (``torchrun ... -m yolov2_lib.cli train``)."""

import sys

from . import main

sys.exit(main())
