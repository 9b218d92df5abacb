"""One module per ``vecx`` subcommand; each defines ``add_parser(subparsers)``."""
