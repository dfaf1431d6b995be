"""ROS 2 adapters: one thin file per node, conversions, QoS profiles, parameters, main()."""
