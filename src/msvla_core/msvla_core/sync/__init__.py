"""Timestamp synchronisation shared by the live fusion node and the bag trainers."""
from .approximate import ApproximateSynchronizer, StreamSpec, SyncedSet

__all__ = ["ApproximateSynchronizer", "StreamSpec", "SyncedSet"]
