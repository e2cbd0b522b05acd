"""``python -m moefuzz``: the same CLI as the ``moefuzz`` command."""

from moefuzz.ui.cli import main

main()
