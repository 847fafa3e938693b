"""The graph state and the replies the model must give at each step.

Below the nodes and above the libraries: it may use the libraries' models (a tool spec,
a sandbox report), and nothing below it imports it.
"""
