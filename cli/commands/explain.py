"""``hvci-triage explain TOPIC``: what a category, 0xC4 subcode, bug check, API, counter or constant means.

TOPIC is looked up in the knowledge base (see :mod:`cli.explain.topics` for the order and the number
forms); every topic it names is shown, as plain text (never colour or markup, so it pastes into tickets)
or ``--format json``. An unknown topic is a one-line error and exit code 2.
"""

from __future__ import annotations

import click

from cli.exitcodes import ExitCode
from cli.explain.text import list_text, render_text
from cli.explain.topics import clean_query, resolve
from cli.output import emit, warn
from hvci.knowledge import kb


@click.command("explain", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("topic", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Plain text or JSON.",
)
@click.option("--list", "list_topics", is_flag=True, help="List the category ids.")
def command(topic: tuple[str, ...], fmt: str, list_topics: bool) -> None:
    """Explain a category, 0xC4 subcode, bug check, API, counter label or constant.

    TOPIC is a category id (execute-pool-type), a number in hex (0x2001, 2001, 0xC4, c4), an API name
    (MmMapIoSpace), a counter label (Execute Pool Type Count), a constant (NonPagedPool) or a CodeIntegrity
    event id (3087).
    """
    base = kb.load()
    if list_topics:
        emit(list_text(base))
        return
    query = clean_query(" ".join(topic))
    if not query:
        warn(
            "give a topic (a category id, 0x2000, 0xC4, an API name or a counter label), or --list",
            prefix="hvci-triage explain",
        )
        click.get_current_context().exit(ExitCode.USAGE)
    topics = resolve(query, base)
    if not topics:
        warn(
            f"unknown topic {query!r} (try a category id, 0x2000, 0xC4, an API name, a counter label, "
            "or --list)",
            prefix="hvci-triage explain",
        )
        click.get_current_context().exit(ExitCode.USAGE)
    if fmt == "json":
        from cli.explain.document import render_json  # the json module only when JSON is asked for

        emit(render_json(query, topics, base))
    else:
        emit(render_text(topics, base))
