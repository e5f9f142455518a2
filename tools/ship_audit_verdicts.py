"""Make xlbench/audit_verdicts.json: the hidden-label audit's verdict on each built-in method's
default config, shipped so that a fresh machine's main command need not audit them first.

    python tools/ship_audit_verdicts.py          # audits every built-in (about 10 s on 2 cores)

Run it whenever a built-in method's file, its default config or xlbench's version changes:
tests/test_shipped_audits.py fails until it is run (a stale file would be merely unused, since a
changed method has another fingerprint, but it should not ship). It uses $XLBENCH_HOME's
generated corpus (made if missing) and refuses to write any verdict but a pass.
"""

from __future__ import annotations

import sys

from xlbench import __version__
from xlbench.audit import SHIPPED_NOTE, SHIPPED_VERDICTS, builtin_audit_targets, run_audit
from xlbench.home import atomic_write_json


def main() -> int:
    verdicts = {}
    for cls, config, mode in builtin_audit_targets():
        res = run_audit(cls, config, mode=mode)
        print(f"{cls.name:<14} {res.verdict:<8} {res.seconds:5.1f} s  {res.fingerprint}", flush=True)
        if res.verdict != "pass":
            print(f"error: {cls.name} did not pass ({res.detail}); nothing written", file=sys.stderr)
            return 1
        stamp = res.stamp().model_copy(update={"detail": f"{res.detail}; {SHIPPED_NOTE.format(version=__version__)}"})
        verdicts[res.fingerprint] = {"method": cls.name, "mode": mode, "config": config, "stamp": stamp.model_dump()}
    atomic_write_json(SHIPPED_VERDICTS, {"xlbench_version": __version__, "verdicts": verdicts})
    print(f"wrote {SHIPPED_VERDICTS} ({len(verdicts)} verdicts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
