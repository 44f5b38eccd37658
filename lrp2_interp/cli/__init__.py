"""Command line ``lrp2-interp``: one module per group of commands."""
