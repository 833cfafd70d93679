"""The copy pool: clone slots, which cluster takes a new clone, and the plan that keeps spare slots ready.

Aurora gives a cluster 15 copy-on-write clone slots; past that a "clone" silently becomes a full copy.
The pool keeps fresh full copies of a source, each with slots of its own. Everything here is pure: a
snapshot of clusters and a policy in, a decision out. Gathering the snapshot and carrying out the
decision belong to the callers.
"""
