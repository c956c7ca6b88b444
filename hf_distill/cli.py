"""``hf-distill`` command line: ``hf-distill demo [--flags]`` (see ``hf-distill demo --help``)."""

from __future__ import annotations

import logging
import sys

from transformers import HfArgumentParser


def _demo(argv: list[str]) -> int:
    from .demo import DemoArguments, format_table, run_demo

    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=argv)
    results = run_demo(args)
    print(format_table(results))
    print(f"\nteacher caching: {results['cache_s']:.1f} s; train sentences: {results['train_sentences']}; "
          f"test sentences: {results['test_sentences']}; torch threads: {results['threads']}")
    return 0


COMMANDS = {"demo": _demo}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: hf-distill {" + ",".join(COMMANDS) + "} [--help] [options]", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "datasets", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
