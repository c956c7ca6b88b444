"""``python -m hf_distill.cli``: the hf-distill command."""

from . import main

raise SystemExit(main())
