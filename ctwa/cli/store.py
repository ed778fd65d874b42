"""``ctwa store info`` and ``ctwa store prune``: the local store of sends, callbacks and runs."""

import time
from typing import Annotated

import typer

from ctwa.cli.commands import Typer
from ctwa.cli.context import of
from ctwa.cli.options import seconds
from ctwa.cli.trace import when

store_app = Typer(help="The local store of sends, callbacks and runs.",
                  no_args_is_help=True)


@store_app.command("info")
def store_info(ctx: typer.Context) -> None:
    """Where the store is, its size, and how many sends, callbacks and runs it holds."""

    inv = of(ctx)
    out = inv.out
    with inv.store(readonly=True) as store:
        info = store.info()
    if out.json_mode:
        out.stdout_json(info)
        return
    out.stdout_result(f"store {info['path']}")
    out.stdout_line(f"  {info['bytes'] / 1e6:,.1f} MB, schema {info['schema']}")
    out.stdout_line(f"  sends {info['sends']:,}, load runs {info['load_runs']:,}, callbacks "
                    f"{info['callbacks']:,}, runs {info['runs']:,}")
    if info["oldest"]:
        out.stdout_line(f"  oldest entry {when(info['oldest'])}")


@store_app.command("prune")
def store_prune(
    ctx: typer.Context,
    older_than: Annotated[float, typer.Option(
        "--older-than", parser=seconds, metavar="DURATION",
        help="Delete what is older than this, e.g. 30d or 12h.")],
) -> None:
    """Delete sends, callbacks and runs older than --older-than, and give the space back."""

    inv = of(ctx)
    out = inv.out
    with inv.store() as store:
        removed = store.prune(time.time() - older_than)
    if out.json_mode:
        out.stdout_json({"removed": removed})
        return
    out.stdout_result("removed " + ", ".join(f"{n:,} {table.replace('_', ' ')}"
                                             for table, n in removed.items()))


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
