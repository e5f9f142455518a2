"""The report layer: run records -> tables -> statistics -> markdown, figures, paper pages -> check.

Each module does one step and imports only the ones before it (docs/architecture.md):

1. :mod:`.identity` — what makes runs comparable (:func:`~.identity.setting_key`) and what a system is;
2. :mod:`.validate` — reading records and refusing the defective ones;
3. :mod:`.frame` — one row per run (pandas) and the mean ± std over seeds;
4. :mod:`.tables` — which tables exist and which systems each shows;
5. :mod:`.significance` — the statistics of a table (from :mod:`xlbench.stats`);
6. renderers — :mod:`.markdown` (the leaderboard page), :mod:`.figures`, :mod:`.paper_pages`
   (the paper's tables, laid out by :mod:`.paper_tables`), sharing :mod:`.formatting` and
   :mod:`.generated` (markers and banners);
7. :mod:`.board` writes a leaderboard folder; :mod:`.check` renders every generated file again
   and compares.

This file imports nothing, so importing one step does not import the others (nor matplotlib).
"""
