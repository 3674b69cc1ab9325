"""Model cards, the registry of public checkpoints, checkpoint loading and network builders."""
