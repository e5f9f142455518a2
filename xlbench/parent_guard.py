"""Importing this module makes the importing process die with its parent (xlbench.lifetime).

For processes whose start-up code is not ours: the fork server of xlbench.isolation imports
the modules it is told to preload, and lists this one first, so a harness killed while its
fork server is still importing torch does not leave the fork server behind.
"""

from xlbench.lifetime import die_with_parent

die_with_parent()
