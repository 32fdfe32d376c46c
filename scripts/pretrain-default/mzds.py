"""Reads MZDS dataset files (the project's binary format, docs/data.md) into numpy arrays."""
import struct

import numpy as np


def read_mzds(path):
    """Returns (features float32 [rows, *shape], labels int64 [rows], num_classes)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"MZDS":
        raise ValueError(f"{path}: not an MZDS file")
    version, dtype, rank, num_classes, header_bytes, rows = struct.unpack_from("<HBBIIQ", data, 4)
    if version != 1 or dtype != 1:
        raise ValueError(f"{path}: expected MZDS version 1 with float32 features, got version {version} dtype {dtype}")
    shape = struct.unpack_from(f"<{rank}I", data, 24)
    width = int(np.prod(shape))
    features = np.frombuffer(data, dtype="<f4", count=rows * width, offset=header_bytes)
    labels = np.frombuffer(data, dtype="<i4", count=rows, offset=header_bytes + rows * width * 4)
    if len(data) != header_bytes + rows * width * 4 + rows * 4:
        raise ValueError(f"{path}: size does not match its header")
    return features.reshape((rows, *shape)).astype(np.float32), labels.astype(np.int64), num_classes
