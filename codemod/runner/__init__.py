"""Whole repositories, bottom up (the CLI sits on top): ``files`` (bytes, atomic writes),
``one_file`` (read, migrate and write one file), ``parallel`` (many files, N processes),
``discovery`` (which files) and ``settings`` (``[tool.torch2ms]``)."""
