"""`defemb` run in-process for the tests through click's CliRunner (no tests here).

The CLI is imported on the first call, as the tests that import this did themselves, so collecting them
stays as cheap as before.
"""

from __future__ import annotations

import json
from typing import Any


def invoke(*args: object, **kw: Any) -> Any:
    """`defemb ARGS`: the click Result. Each argument is passed as str(arg), so paths go in as they are."""
    from click.testing import CliRunner

    from definitionemb.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


def invoke_json(*args: object, **kw: Any) -> Any:
    """`defemb ARGS` (a command given --json), which must exit 0: its stdout parsed."""
    res = invoke(*args, **kw)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)
