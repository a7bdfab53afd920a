"""What the command-line tests share."""

from __future__ import annotations

from persona_plugins.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``persona-plugins ARGV`` in-process: ``(exit status, stdout, stderr)``."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
