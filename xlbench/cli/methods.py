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


@click.command("check-method")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Method options for the check.")
@click.option("--finetune", is_flag=True, help="Also check end-to-end training with a tiny random HuBERT.")
def check_method(name: str, overrides: tuple[str, ...], finetune: bool) -> None:
    """Run the method contract on the synthetic corpus with a tiny encoder, on CPU, in seconds.

    What a plugin author runs before submitting: the class is well formed, its config
    validates, fit works on a small task, predictions are probabilities of the right shape,
    the method touches no key outside its task, and the same seed gives the same predictions.
    """
    from xlbench.contract import check

    results = check(name, parse_overrides(overrides), finetune=finetune)
    rows = [["PASS" if r.ok else "FAIL", r.name, r.detail] for r in results.checks]
    click.echo(tabulate(rows, headers=["", "check", "detail"], tablefmt="github"))
    click.echo(f"{sum(r.ok for r in results.checks)}/{len(results.checks)} checks passed in {results.seconds:.1f} s")
    if not results.ok:
        raise SystemExit(1)
