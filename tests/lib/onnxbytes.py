"""ONNX files at the byte level, for the tests of the metadata rewrite
(`canopy evaluate --write-model`, `canopy calibrate`): what one
metadata_props entry looks like in a serialized ModelProto."""


def _varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def entry_bytes(key, value):
    """A metadata_props entry as it sits in a serialized ModelProto (field
    14, length-delimited), encoded by Python's protobuf (the onnx package)."""
    import onnx
    e = onnx.StringStringEntryProto(key=key, value=value).SerializeToString()
    return b"\x72" + _varint(len(e)) + e
