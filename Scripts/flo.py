"""Middlebury .flo files for the project's Python scripts (numpy only)."""
import numpy as np

FLO_MAGIC = 202021.25


def read_flo(path):
    """Reads a .flo file into an (H, W, 2) float32 array; a wrong magic or a short file raises
    ValueError naming the file."""
    with open(path, "rb") as f:
        magic = np.fromfile(f, np.float32, 1)
        if magic.size != 1 or magic[0] != FLO_MAGIC:
            raise ValueError(f"{path}: not a .flo file (magic {magic})")
        dims = np.fromfile(f, np.int32, 2)
        if dims.size != 2:
            raise ValueError(f"{path}: truncated .flo header")
        width, height = (int(x) for x in dims)
        data = np.fromfile(f, np.float32, width * height * 2)
    if data.size != width * height * 2:
        raise ValueError(f"{path}: truncated .flo ({data.size} of {width * height * 2} values for {width}x{height})")
    return data.reshape(height, width, 2)
