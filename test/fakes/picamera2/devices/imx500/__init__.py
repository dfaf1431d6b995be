from .imx500 import IMX500, NetworkIntrinsics
from .postprocess_nanodet import postprocess_nanodet_detection

__all__ = ["IMX500", "NetworkIntrinsics", "postprocess_nanodet_detection"]
