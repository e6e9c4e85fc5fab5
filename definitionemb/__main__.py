"""`python -m definitionemb ...` (and `torchrun -m definitionemb embed train ...`) run the command line."""

from definitionemb.cli import main

main()
