"""ROS-edge helpers shared by the MSVLA nodes: parameters, diagnostics, QoS, paths, node main()."""
