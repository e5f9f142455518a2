"""`xlbench methods list|show` and `xlbench check-method`."""

from __future__ import annotations

import click
from tabulate import tabulate

from xlbench.method import METHODS, get_method, parse_overrides


@click.group()
def methods() -> None:
    """Registered methods (entry-point group xlbench.methods)."""


@methods.command("list")
def list_methods() -> None:
    """Every registered method, where it comes from, and whether it loads."""
    rows = []
    for reg in METHODS.try_load_all():
        if reg.status == "conflict":
            state = f"conflict: also from {', '.join(reg.others)}"
        elif reg.status == "broken":
            state = f"broken: {reg.error}"
        else:
            state = "ok"
        obj = reg.obj if reg.loaded else None
        version = getattr(obj, "version", "") if obj is not None else ""
        summary = getattr(obj, "summary", "") if obj is not None else ""
        rows.append([reg.name, version, f"{reg.distribution} {reg.version or ''}".strip(), state, summary])
    click.echo(
        tabulate(
            rows,
            headers=["method", "version", "distribution", "status", "summary"],
            tablefmt="github",
            disable_numparse=True,
        )
    )


@methods.command("show")
@click.argument("name")
def show_method(name: str) -> None:
    """A method's citation, the data it needs and its options with defaults."""
    cls = get_method(name)
    reg = METHODS.registration(name)
    click.echo(f"{cls.name} v{cls.version} (from {reg.distribution})")
    if cls.summary:
        click.echo(cls.summary)
    if cls.citation:
        click.echo(f"cite: {cls.citation}")
    click.echo(
        f"needs: {', '.join(sorted(cls.needs))}"
        + (" (all target labels: upper bound)" if cls.uses_all_target_labels else "")
    )
    rows = []
    for field_name, field in cls.Config.model_fields.items():
        ann = getattr(field.annotation, "__name__", str(field.annotation)).replace("typing.", "")
        rows.append([field_name, ann, field.get_default(call_default_factory=True), field.description or ""])
    click.echo(tabulate(rows, headers=["option (--set)", "type", "default", "meaning"], tablefmt="github"))


def _print_checks(results) -> None:
    rows = [["PASS" if r.ok else "FAIL", r.name, r.detail] for r in results.checks]
    click.echo(tabulate(rows, headers=["", "check", "detail"], tablefmt="github"))
    click.echo(f"{sum(r.ok for r in results.checks)}/{len(results.checks)} checks passed in {results.seconds:.1f} s")


def known_method(name: str) -> None:
    """Refuse a name no distribution registers (a registered but broken plugin is the contract's to report)."""
    from xlbench.method import METHODS

    METHODS.registration(name)  # unknown: a ConfigError with "did you mean"


@click.command("check-method")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Method options for the check.")
@click.option("--finetune", is_flag=True, help="Check end-to-end training with a tiny random HuBERT instead.")
def check_method(name: str, overrides: tuple[str, ...], finetune: bool) -> None:
    """Run the method contract on the synthetic corpus with a tiny encoder, on CPU, in seconds.

    What a plugin author runs before submitting: the class is well formed, its config
    validates, fit and predict work in the method's worker on a small task, the method asks for
    no key outside its declared parts, predictions are probabilities of the right shape, the
    same seed gives the same outputs, and the hidden-label audit passes (outputs identical when
    the labels of U_t and of the test sets are permuted everywhere the harness and disk hold them).
    """
    from xlbench.contract import check

    known_method(name)  # an unknown name is one line, not a table of one failed check
    results = check(name, parse_overrides(overrides), finetune=finetune)
    _print_checks(results)
    if not results.ok:
        raise SystemExit(1)


@click.command("audit")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Method options to audit.")
@click.option("--finetune", is_flag=True, help="Audit end-to-end training (tiny random HuBERT) instead of frozen.")
def audit(name: str, overrides: tuple[str, ...], finetune: bool) -> None:
    """The hidden-label invariance audit alone (docs/adding-a-method.md).

    Runs the method three times on a small generated task, twice as is and once with the
    hidden labels of U_t and of both test sets permuted in the harness's truth, the manifests
    and the file names of a private copy of the corpus. Identical outputs: pass. Exit status 1
    unless it passes. The verdict is cached for `xlbench run` (per method version, code and config).
    """
    from xlbench.audit import audits_dir, run_audit
    from xlbench.home import atomic_write_json
    from xlbench.method import make_config

    cls = get_method(name)
    config = make_config(cls, parse_overrides(overrides)).model_dump(mode="json")
    mode = "finetune" if finetune else "frozen"
    res = run_audit(cls, config, mode=mode)
    atomic_write_json(audits_dir() / f"{res.fingerprint}.json", {
        "stamp": res.stamp().model_dump(), "method": name, "config": config, "mode": mode,
        "seconds": round(res.seconds, 2),
    })
    colour = {"pass": "green", "fail": "red"}.get(res.verdict, "yellow")
    click.secho(f"{name}: {res.verdict}", fg=colour, bold=True)
    click.echo(f"{res.detail}")
    click.echo(f"fingerprint {res.fingerprint} · {res.seconds:.1f} s")
    if res.verdict != "pass":
        raise SystemExit(1)
