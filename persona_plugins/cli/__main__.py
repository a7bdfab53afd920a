"""``python -m persona_plugins.cli``: the ``persona-plugins`` command."""

from __future__ import annotations

import sys

from persona_plugins.cli import main

if __name__ == "__main__":  # importing this module runs nothing
    sys.exit(main())
