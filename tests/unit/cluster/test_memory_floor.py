"""MAX_MEMORY below what a worker needs at idle is refused at start, not
obeyed by recycling workers for ever."""

from __future__ import annotations

from tests.unit.cluster.test_supervisor import MB, Cluster


def test_a_first_worker_over_the_limit_at_idle_stops_the_cluster() -> None:
    """The first worker ready at 80 MB with MAX_MEMORY=10mb: one fatal line naming
    both sizes, and no recycling."""
    cluster = Cluster(2, max_memory=10 * MB, memory_interval=2)
    cluster.supervisor.start()
    cluster.memory[1001] = 80 * MB
    cluster.ready(1)
    assert cluster.fatal == [
        "MAX_MEMORY (10 MB) is below what a worker needs when idle (80 MB); "
        "raise it (e.g. MAX_MEMORY=256mb)"
    ]
    cluster.advance(10)
    assert cluster.spawned == [1, 2]


def test_a_worker_that_grows_later_is_recycled_as_before() -> None:
    """Under the limit when ready, over it later: recycled, never fatal."""
    cluster = Cluster(1, max_memory=100 * MB, memory_interval=2)
    cluster.supervisor.start()
    cluster.memory[1001] = 80 * MB
    cluster.ready(1)
    cluster.memory[1001] = 150 * MB
    cluster.advance(2)
    assert cluster.fatal == [] and cluster.spawned == [1, 2]
