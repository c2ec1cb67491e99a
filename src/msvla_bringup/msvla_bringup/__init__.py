"""Robot graphs as data, launch files, parameter files, checkpoints, the process runner and the demo."""
