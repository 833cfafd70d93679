"""ResourceProperties as CloudFormation sends them, and the problems parse_properties finds in them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from aurora_clone.properties import PropertiesError, parse_properties

SERVICE_TOKEN = "arn:aws:lambda:us-east-1:123456789012:function:aurora-clone"
SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:prod-db"


def raw(**properties: Any) -> dict[str, Any]:
    """ResourceProperties as CloudFormation sends them: ServiceToken always there, a valid source by default."""
    return {"ServiceToken": SERVICE_TOKEN, "SourceClusterId": "prod-db", **properties}


def problems_of(properties: dict[str, Any]) -> list[str]:
    with pytest.raises(PropertiesError) as raised:
        parse_properties(properties)
    return raised.value.problems


def names(problem: str, name: str) -> bool:
    """True when ``problem`` names the property ``name`` (ClusterId is not named by SourceClusterId)."""
    return re.search(rf"\b{name}\b", problem) is not None
