"""Entry point of ``python -m pipeline``."""

import os
import sys

from pipeline.cli import main

code = main()
# Why os._exit: after a run, TensorFlow/Beam background threads can crash the interpreter's
# teardown (an occasional SIGSEGV at exit, after the run has been recorded COMPLETE). The
# metadata is committed and outputs are published, so skip the teardown and return the code.
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
