"""The state layer, above the declaration surface: ``blob`` (``SavedStateBlob``, a
``google.protobuf.Any``), ``saverestore`` (the ``SaveRestore`` protocol), ``units`` (state units
of a machine) and ``snapshot`` (snapshot files)."""
