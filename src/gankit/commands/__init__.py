"""CLI commands that live in their own module; see ``gankit.cli.COMMAND_MODULES``."""
