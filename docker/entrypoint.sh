#!/bin/bash
# Every command runs in the ROS underlay plus the workspace overlay. exec replaces this shell, so
# the command gets the signals `docker stop` sends (the nodes shut down cleanly on SIGINT).
set -e
source /opt/ros/jazzy/setup.bash
source /ws/install/setup.bash
exec "$@"
