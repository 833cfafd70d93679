"""The tags this tool writes on everything it creates, and the test "is this ours"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TAG_PREFIX = "aurora-clone:"
MANAGED_BY_TAG = "aurora-clone:managed-by"
MANAGED_BY_VALUE = "aurora-clone"
STACK_ID_TAG = "aurora-clone:stack-id"
LOGICAL_ID_TAG = "aurora-clone:logical-id"
REQUEST_TAG = "aurora-clone:request"
SOURCE_TAG = "aurora-clone:source-cluster"  # the SourceClusterId asked for
CLONED_FROM_TAG = "aurora-clone:cloned-from"  # the cluster actually cloned: the source or one of its copies
FULL_COPY_TAG = "aurora-clone:full-copy"  # "true" when the resource had to be made a full copy
# A warm clone the pool keeps ready: the name of its warm shape. Claimed, it carries FROM_WARM_POOL_TAG instead.
WARM_POOL_TAG = "aurora-clone:warm-pool"
FROM_WARM_POOL_TAG = "aurora-clone:from-warm-pool"


@dataclass(frozen=True)
class Owner:
    """The resource that owns a clone: one logical id in one stack."""

    stack_id: str
    logical_id: str

    def tags(self, request: str, source_cluster_id: str) -> dict[str, str]:
        """The ownership tags written on every cluster and instance this resource creates."""
        return {
            MANAGED_BY_TAG: MANAGED_BY_VALUE,
            STACK_ID_TAG: self.stack_id,
            LOGICAL_ID_TAG: self.logical_id,
            REQUEST_TAG: request,
            SOURCE_TAG: source_cluster_id,
        }

    def owns(self, tags: Mapping[str, str]) -> bool:
        """True when ``tags`` say this resource made the tagged cluster or instance."""
        return (
            tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE
            and tags.get(STACK_ID_TAG) == self.stack_id
            and tags.get(LOGICAL_ID_TAG) == self.logical_id
        )


def is_ownership_tag(key: str) -> bool:
    """Tags under this tool's prefix are never changed by a user's ``Tags``."""
    return key.startswith(TAG_PREFIX)
