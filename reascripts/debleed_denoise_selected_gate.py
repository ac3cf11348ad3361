"""debleed ReaScript action: Denoise the selected items with the pre-gate, then the model.

Installed by 'debleed reaper install'; see docs/reaper.md."""

import os
import sys

from reaper_python import RPR_GetResourcePath

_here = os.path.join(RPR_GetResourcePath(), "Scripts", "debleed")
if _here not in sys.path:
    sys.path.append(_here)
import debleed_boot  # noqa: E402

debleed_boot.run("denoise_gate")
