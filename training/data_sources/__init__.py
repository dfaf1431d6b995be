"""Sources, annotations and tools for the real detector data (no image data is kept here)."""
