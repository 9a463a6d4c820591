"""The plug-in interface for rewards and attributors: the rollout view they read, the registry that finds them by name
(entry points), and the client of a remote Reward service."""
