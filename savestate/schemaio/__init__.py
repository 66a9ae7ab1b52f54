"""Schema I/O, above the model: ``proto`` (``.proto`` text out), ``compat`` (baselines in,
through protoc's descriptors, and the compatibility check) and ``discover`` (finding the
saved-state roots that modules define)."""
