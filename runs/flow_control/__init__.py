"""Flow control (protocol.md §6), next to the rows it writes: `gates` (admission at run creation:
rate limit, singleton, throttle; concurrency slots at every call), `debounces` and `batches`
(events held in their rows before a run starts), `counters` (the Redis side: slots, lines,
GCRA tokens). The configuration it reads is parsed and validated at sync by the registry
(functions/flow_config.py), which lies below runs."""
