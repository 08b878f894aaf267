"""CLI: ``python -m data_prep.synthetic --out DIR [--size tiny|demo] [--seed N] [--jobs N]``."""

import argparse
import logging
import os

from data_prep.synthetic import SIZES, generate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="folder that receives the corpora")
    parser.add_argument("--size", default="demo", choices=SIZES, help="corpus size")
    parser.add_argument("--seed", type=int, default=0, help="generation seed")
    parser.add_argument("--corpora", default="iemocap,musan,librispeech",
                        help="comma-separated subset of iemocap,musan,librispeech")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="corpora written at once (one process each)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = generate(args.out, args.size, args.seed, args.corpora.split(","), args.jobs)
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
