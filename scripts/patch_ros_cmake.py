"""Rewrite the build machine's Python/numpy include paths baked into the ROS wheels' CMake files."""

import pathlib
import re
import sys
import sysconfig

import numpy

venv = pathlib.Path(sys.argv[1])
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
pattern_py = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
pattern_np = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(?:_core|core)/include")
changed = 0
for path in (venv / "share").glob("*/cmake/*.cmake"):
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    new = pattern_np.sub(np_inc, text)
    new = pattern_py.sub(py_inc, new)
    if new != text:
        path.write_text(new, encoding="utf-8", errors="surrogateescape")
        changed += 1
print(f"[bootstrap] patched include paths in {changed} CMake files", file=sys.stderr)
