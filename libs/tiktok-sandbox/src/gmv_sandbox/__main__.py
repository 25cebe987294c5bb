"""``python -m gmv_sandbox``: the ``sandbox`` command."""

from gmv_sandbox.cli import app

app(prog_name="gmv-sandbox")
