"""``python -m moefuzz``: the same CLI as the ``moefuzz`` command."""

from moefuzz.cli import main

main()
