"""Run a command and print its peak resident memory (kB) to stderr as ``IONMD_MAXRSS_KB <kB>``.

Used by pair_speed.py under ``mpirun`` (one wrapper per rank); file descriptors
are inherited so that the MPI process manager still reaches the child.
"""

import resource
import subprocess
import sys

rc = subprocess.call(sys.argv[1:], close_fds=False)
print(f"IONMD_MAXRSS_KB {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}", file=sys.stderr)
sys.exit(rc)
