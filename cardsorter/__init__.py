"""cardsorter: ROS 2 trading-card sorter. Kept empty: the generated package installs its own."""
# In the source tree, let `cardsorter.msg` / `cardsorter.srv` resolve to the colcon-generated package.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
