"""python -m bench.streams: the generator CLI (bench/streams/generate.py)."""
import sys

from .generate import main

sys.exit(main())
