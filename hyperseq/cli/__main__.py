"""``python -m hyperseq.cli ...`` (the driver command of a cluster job)."""
from hyperseq.cli import main

main()
