"""xlbench.report.paper_pages: our numbers for a paper table beside the published ones, matched
to the records by exact config and setting; paper numbers only for real corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.data.fake_records import BASE_CONFIG, make_record, table_scenario
from tests.report_utils import cells, loaded
from xlbench.method import get_method
from xlbench.paper import TABLE8_CAPTION_NOTE
from xlbench.report.paper_pages import Scope, reproduction_page


def test_reproduce_table_renders_ours_beside_the_papers(tmp_path: Path) -> None:
    recs = table_scenario("italian", False, 100, "hubert")
    recs += [make_record("pseudolabel", "italian", s, n_labeled=100, synthetic=False, encoder="hubert",
                         config={**BASE_CONFIG, "mode": "hard"}) for s in (0, 1, 2)]
    scope = Scope("hubert", "frozen", "paper", False, (0, 1, 2))
    records_dir, page = tmp_path / "r", tmp_path / "t.md"

    # the expected configs come from the installed method: match them to our fake records
    cfg = get_method("crosslingual").Config().model_dump(mode="json")
    lower = [make_record("crosslingual", "italian", s, synthetic=False, encoder="hubert", config=cfg)
             for s in (0, 1, 2)]
    text = reproduction_page(["table4"], loaded(lower + recs), {}, scope, ["italian"], records_dir, page)
    uas = [r.metrics["target"].ua for r in lower]
    row = cells(text, "Italian")
    assert row[1] == f"{100 * np.mean(uas):.2f} ± {100 * np.std(uas, ddof=1):.2f}"
    assert row[2] == "52.14" and row[4] == "81.50" and row[5] == "3"
    assert "| French" not in text
    text7 = reproduction_page(["table7"], loaded(recs), {}, scope, ["italian"], records_dir, page)
    assert "not run" in text7 and "74.24" in text7 and TABLE8_CAPTION_NOTE in text7
    synth = Scope("hubert", "frozen", "paper", True, (0, 1, 2))
    texts = reproduction_page(["table4"], loaded(lower), {}, synth, ["italian"], records_dir, page)
    assert "SYNTHETIC" in texts and "52.14" not in texts
