"""Task sets and the task driver that publishes them to lw.tasks (the demo and tests use them)."""
