"""The project's exception hierarchy: every failure names the thing that was wrong."""


class CardsorterError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(CardsorterError):
    """A parameter, rules file or manifest entry is missing or invalid."""


class ModelError(CardsorterError):
    """An embedding model or its manifest cannot be used."""


class DatabaseError(CardsorterError):
    """A reference database is missing, inconsistent or fails an integrity check."""


class ImageError(CardsorterError):
    """An image cannot be read or has an unusable shape."""


class CameraError(CardsorterError):
    """A camera source cannot be opened or stopped delivering frames."""


class ActuatorError(CardsorterError):
    """An actuator did not acknowledge, jammed or cannot be opened."""


class InventoryError(CardsorterError):
    """The inventory database cannot be written or read."""


class BagError(CardsorterError):
    """A rosbag cannot be read, written or replayed."""
