"""``fkhls cache`` and ``fkhls cache prune``: show and prune the compile cache (fkhls.csim.cache)."""

from __future__ import annotations

import click


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n} B"


@click.group(invoke_without_command=True)
@click.pass_context
def cache(ctx) -> None:
    """Show the compile cache: location, size, and every entry with its age and project."""
    if ctx.invoked_subcommand is not None:
        return
    from tabulate import tabulate

    from fkhls.csim.cache import cache_dir, cache_entries

    entries = cache_entries()
    click.echo(f"cache: {cache_dir()} (set $FKHLS_CACHE_DIR to move it)")
    click.echo(f"{len(entries)} entries, {_size(sum(e.size for e in entries))}")
    if entries:
        rows = [[e.path.name, e.state, _size(e.size), f"{e.age_days:.1f}", e.project or "?"] for e in entries]
        click.echo(tabulate(rows, headers=["entry", "state", "size", "age (days)", "project"], disable_numparse=True))


@cache.command()
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), metavar="DAYS",
              help="Remove entries not built or used for more than DAYS days.")
@click.option("--all", "everything", is_flag=True, help="Remove every fkhls-built entry.")
def prune(older_than, everything) -> None:
    """Remove fkhls-built cache entries (nothing else under the cache directory is touched)."""
    from fkhls.csim.cache import prune_cache

    if older_than is None and not everything:
        raise click.UsageError("give --older-than DAYS or --all")
    removed = prune_cache(older_than, everything)
    click.echo(f"removed {len(removed)} entries ({_size(sum(e.size for e in removed))})")


COMMANDS = [cache]
