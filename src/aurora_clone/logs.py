"""The service name every module's Powertools Logger shares, so child loggers reach the handler's."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger

from aurora_clone.settings import settings

SERVICE = settings.service_name

# What the runners log to: the scheduled function's Powertools Logger, or the CLI's standard one.
AnyLogger = Logger | logging.Logger
