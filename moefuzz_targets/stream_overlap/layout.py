"""Names the stream_overlap contract, oracle and kernels share, free of moefuzz imports (so that
an exported reproducer can import the kernels with only torch and triton installed)."""

#: How a batch's pages reach the host: ``copy_engine`` (``tensor.copy_(non_blocking=True)`` into
#: pinned memory) or ``sm_kernel`` (a Triton gather into a staging buffer, then one copy).
COPY_METHODS = ("copy_engine", "sm_kernel")
#: The output: ``host_pages`` [B, P, page_size, slot_size] int32.
OUTPUT = "host_pages"
#: What the host buffer holds before a copy lands: moefuzz's int poison
#: (``moefuzz.execute.launch.INT_POISON``, restated here; a test pins the two equal).
UNCOPIED = 0x7FFFFFFF - 0x2A
