"""The graph state and the pydantic models that cross boundaries.

Importing this package imports nothing from LangGraph, so the sandbox and the tool library
may use its models; the graph state itself lives in ``state.graph_state``.
"""
