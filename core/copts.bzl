"""Compiler options of every allocator library."""

CORE_COPTS = [
    "-fvisibility=hidden",
    "-fno-semantic-interposition",
    "-ftls-model=initial-exec",
]
