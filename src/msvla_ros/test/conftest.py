import pytest
import rclpy


@pytest.fixture
def context():
    """An rclpy context of the test's own (the executor tests shut theirs down)."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture
def peer_context():
    """A second context: a DDS participant of its own, as another process would have (one
    participant cannot have one topic with two types)."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)
