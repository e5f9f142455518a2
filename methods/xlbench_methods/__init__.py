"""The paper's method for xlbench: ``pseudolabel`` (Agarla et al. 2024, Sec. 3.2, Algorithm 1).

Registered through the ``xlbench.methods`` entry-point group like any third-party method; the
reusable pieces it is built from live in ``xlbench.components``. See docs/methods.md.
"""
