"""The `sea` command line: an entry point that composes the graph and the libraries."""
