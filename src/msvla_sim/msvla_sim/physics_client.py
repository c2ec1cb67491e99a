"""Ownership of one PyBullet physics client, shared by the simulated scenes."""
from __future__ import annotations


class OwnsPhysicsClient:
    """Disconnects `self._client` (set by the subclass, through `self._pb`) exactly once: on close(),
    at the end of a with-block, or when garbage-collected."""

    _client: int | None = None

    def close(self) -> None:
        if self._client is not None and self._client >= 0:
            try:
                self._pb.disconnect(physicsClientId=self._client)
            except Exception:  # the server may already be gone (interpreter shutdown)
                pass
            self._client = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
