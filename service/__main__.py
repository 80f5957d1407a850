"""``python -m service``: the govex command line."""

from service.cli import main

main()
