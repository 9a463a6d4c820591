"""The operator's tools on top of the services: the CLI, the local stack, the demo, the task driver and task sets."""
