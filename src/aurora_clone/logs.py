"""The service name every module's Powertools Logger shares, so child loggers reach the handler's."""

from __future__ import annotations

import os

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "aurora-clone"
