"""launch_testing test of the Franka graph as `ros2 launch ... simulation:=true` starts it.

For ROS 2 machines (`colcon test`, the docker `test` service); pytest on a machine without
launch_testing does not collect this folder (see the repository's conftest.py). The same checks
run here through the process runner (test_franka_graph.py, test_fault_injection.py).
"""
import subprocess
import unittest

import launch
import launch_testing.actions
import pytest
import rclpy

from msvla_bringup.episodes import EpisodeDriver
from msvla_bringup.graph import load_graph
from msvla_bringup.launch_actions import node_actions
from msvla_msgs.msg import SafetyStatus


@pytest.mark.launch_test
def generate_test_description():
    spec, base = load_graph("franka_rgbd")
    return launch.LaunchDescription(node_actions(spec, base, simulation=True)
                                    + [launch_testing.actions.ReadyToTest()])


class TestFrankaGraph(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.driver = EpisodeDriver("franka_launch_test")
        cls.driver.wait_for_graph(timeout_s=120.0)

    @classmethod
    def tearDownClass(cls):
        cls.driver.destroy_node()
        rclpy.shutdown()

    def test_1_an_instruction_yields_a_shielded_grasp(self):
        result = self.driver.run_episode(seed=4242, timeout_s=60.0)
        grasps = [g for g, _ in self.driver.seen.grasps if g.instruction == result.instruction]
        self.assertTrue(grasps, f"no shielded grasp on /msvla/grasp for {result.instruction!r}")
        self.assertEqual(grasps[0].header.frame_id, "panda_link0")
        self.assertTrue(0.0 <= grasps[0].width <= 0.08)

    def test_2_killing_the_vla_node_drives_the_shield_to_its_safe_state(self):
        subprocess.run(["pkill", "-KILL", "-f", "__node:=vla_node"], check=True)
        statuses = self.driver.seen.statuses

        def safe_stop():
            return bool(statuses) and statuses[-1].state == SafetyStatus.STATE_SAFE_STOP

        self.assertTrue(self.driver.spin_until(safe_stop, 10.0),
                        "the shield did not reach SAFE_STOP after the VLA node was killed")
        self.assertIn("heartbeat_timeout", statuses[-1].interventions)
        self.assertTrue(any("vla" in reason for reason in statuses[-1].reasons), statuses[-1].reasons)
        n_grasps = len(self.driver.seen.grasps)
        self.driver.spin_until(lambda: False, 2.0)
        self.assertEqual(len(self.driver.seen.grasps), n_grasps, "a grasp was published after the VLA died")
