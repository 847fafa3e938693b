"""The node kit: what nodes are made with, below the nodes and above ``state/``.

The runtime context (settings), the model factory and the one structured-reply path, the
scripted model, the process's services (tool library, sandbox), static checks on generated
code, and the ``node`` wrapper with progress events.
"""
