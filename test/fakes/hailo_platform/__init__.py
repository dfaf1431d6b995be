"""Fake of HailoRT 4.23's `hailo_platform` (InferModel API surface only) for tests without a Hailo-8.

Mimics the documented behaviour (see shared PLATFORM_NOTES.md §2): VDevice params default to
scheduler NONE, one VDevice per process (HAILO_OUT_OF_PHYSICAL_DEVICES), `activate()` invalid with
the scheduler on and required without it, C-contiguous buffers, uint8 quantised outputs unless the
output format is set to FLOAT32. A "HEF" here is an .npz written by `pyhailort.fake_hef.write_fake_hef`
holding a tiny linear model, so outputs are real functions of the input.
"""

from hailo_platform.pyhailort.pyhailort import (
    HEF,
    ConfigureParams,
    FormatOrder,
    FormatType,
    HailoRTException,
    HailoSchedulingAlgorithm,
    HailoStreamInterface,
    InferVStreams,
    InputVStreamParams,
    OutputVStreamParams,
    VDevice,
)

__version__ = "4.23.0"

__all__ = ["HEF", "ConfigureParams", "FormatOrder", "FormatType", "HailoRTException", "HailoSchedulingAlgorithm",
           "HailoStreamInterface", "InferVStreams", "InputVStreamParams", "OutputVStreamParams", "VDevice"]
