"""Tasks, processes and the event loop that serves them (one tracer for all)."""
