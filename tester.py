#!/usr/bin/env python
"""The seed's interface: python tester.py -i PATH [-w WEIGHTS] [-c CFG]

PATH is an audio file or a folder (walked recursively); one line per file:
    path <TAB> label <TAB> confidence <TAB> every class's probability
It is `drumclassifier classify -r PATH [-w WEIGHTS] [-c CFG]` under the original interface's flags;
without -w, the weights shipped with the package.
"""
import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Classify a drum sample or a folder of them.")
    p.add_argument("-i", "--input", required=True, metavar="PATH", help="audio file or folder")
    p.add_argument("-w", "--weights", metavar="WEIGHTS",
                   help="checkpoint file (default: the shipped model)")
    p.add_argument("-c", "--config", metavar="CFG", help="model config YAML (optional)")
    args = p.parse_args(argv)
    from drumclassifier.cli import main as cli_main
    cli = ["classify", "-r", args.input]
    if args.weights:
        cli += ["-w", args.weights]
    if args.config:
        cli += ["-c", args.config]
    return cli_main(cli)


if __name__ == "__main__":
    sys.exit(main())
