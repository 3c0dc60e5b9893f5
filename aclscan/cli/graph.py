"""`aclscan graph`: the scan as a graph, for graph tools (GraphML, GEXF, JSON, DOT) or a person (PNG)."""

from __future__ import annotations

import sys

import click

from aclscan.cli import cli
from aclscan.cli.options import db_argument
from aclscan.errors import Error
from aclscan.graph import GraphFormat, build_graph, write_graph


@cli.command()
@db_argument
@click.option("--format", "fmt", type=click.Choice([f.value for f in GraphFormat]), default=GraphFormat.GRAPHML.value,
              show_default=True, help="graphml, gexf, json (node-link) or dot for programs; png, a picture for people.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout (png needs it).")
def graph(database, fmt, output):
    """SIDs, accounts, authorities, descriptors, services, rights and the folders with
    explicit ACEs, as one graph of references, memberships and mappings."""
    fmt = GraphFormat(fmt)
    if fmt.is_binary and not output:
        raise click.UsageError(f"--format {fmt.value} writes a picture: give a file with -o")
    scan_graph = build_graph(database)
    # The output is opened only now that there is something to write into it.
    if output:
        try:
            with open(output, "wb") as out:
                write_graph(scan_graph, fmt, out)
        except OSError as exc:
            raise Error(f"cannot write {output}: {exc.strerror or exc}") from None
    else:
        write_graph(scan_graph, fmt, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    summary = scan_graph.graph
    click.echo(f"graph: {scan_graph.number_of_nodes()} nodes, {scan_graph.number_of_edges()} edges;"
               f" {summary.get('sids', 0)} SIDs, {summary.get('problem_sids', 0)} with problems,"
               f" {summary.get('descriptors', 0)} descriptors" + (f" -> {output}" if output else ""), err=True)
