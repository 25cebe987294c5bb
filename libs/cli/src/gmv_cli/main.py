"""The ``gmv`` command line."""

import typer

app = typer.Typer(help="GMV Backend command line.", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo("0.1.0")
