"""Baselines of the xlbench benchmark: the lower and upper bounds, DANN and NNPM.

Registered through the ``xlbench.methods`` entry points exactly as a third-party plugin.
"""
