"""``bridge``: the operator's command line of the SALESmanago bridge.

Backfills history, replays dead letters and manages tenants. It runs on an operator's machine,
outside the Lambda layer, and reuses the layer's models so that what it accepts is exactly what
the functions accept.
"""
