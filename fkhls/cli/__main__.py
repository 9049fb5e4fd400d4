"""``python -m fkhls.cli``: the same as the ``fkhls`` command."""

from fkhls.cli import main

main()
