"""`python -m defemb ...` (and `torchrun -m defemb embed train ...`) run the command line."""

from defemb.cli import main

main()
