"""The ``fkhls`` command line: parse, call the library, print. No logic lives here.

Exit codes: 0 success; 1 an fkhls error (bad input, unsupported model, failed build), printed
as one line; 2 usage error (click); 3 a comparison ran and found words that differ.
Each module here owns a few commands (its ``COMMANDS``); this one puts them on the group.
"""

from fkhls.cli import addressing, cache, campaign, crosscheck, export, harden, inject, rank
from fkhls.cli.common import EXIT_MISMATCH, main

for _module in (export, addressing, inject, crosscheck, campaign, rank, harden, cache):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["EXIT_MISMATCH", "main"]
