"""Small reusable training pieces (each with its own test): pseudo-labelling, mixup, the
R_A / R_H regularisers, rebalancing, gradient reversal and its schedule, the NNPM memory.

Methods compose them; the harness core never imports a concrete method.
"""
