"""The model layer: what declared classes are, below the declaration surface.

``scalars`` (the integer and float kinds), ``registry`` (every declared class: its info, its
scope, its full proto name, the saved-state roots), ``schema`` (the frozen description of each
class), ``introspect`` (building it from annotations), ``foreign`` (messages of other libraries)
and ``names`` (how things are named in ``.proto`` files and JSON). Nothing here imports the
codec, the declaration surface, state, schema I/O or the command line.
"""
