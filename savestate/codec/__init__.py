"""The codec layer, above the model: bytes and JSON of declared classes.

``front`` (``codec_of``: compiles on first use, falls back to the interpreter for precise
errors), ``compiler`` and ``runtime`` (the generated fast path), ``interp`` (the interpreting
codec, the oracle), ``wire`` and ``duration`` (wire-level helpers), ``raw`` (schema-less decoding)
and ``jsonmap`` (the proto3 JSON mapping).
"""
