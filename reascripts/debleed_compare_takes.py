"""debleed ReaScript action: Cycle the selected items between their original and debleed takes.

Installed by 'debleed reaper install'; see docs/reaper.md."""

import os
import sys

from reaper_python import RPR_GetResourcePath

_here = os.path.join(RPR_GetResourcePath(), "Scripts", "debleed")
if _here not in sys.path:
    sys.path.append(_here)
import debleed_boot  # noqa: E402

debleed_boot.run("compare")
