"""Media for video handoff: rooms that relay and record two peers (aiortc), and staff-hours scheduling.

A library: plain arguments in, plain results out; it never reads the environment or imports FastAPI.
"""
